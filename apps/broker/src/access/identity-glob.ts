/**
 * A glob over identities or key ids: `*` stands for any run of characters
 * (slashes included, as in IAM resource patterns), `?` for one character;
 * everything else matches itself. `spiffe://corp/vpc-a/*` thus covers every
 * workload under vpc-a, and `*` everything.
 */
export type Glob = (value: string) => boolean;

/**
 * Compiles a glob once. Matching walks pattern and value together and, on a
 * mismatch, only moves the last `*` on by one character, so its cost is
 * bounded by the product of the two lengths: a caller-chosen key id can
 * never make a policy check backtrack exponentially, as a regular
 * expression with several `.*` can.
 */
export function compileGlob(pattern: string): Glob {
  const glob = [...pattern];
  return (text) => {
    const value = [...text];
    let p = 0;
    let v = 0;
    let star = -1;
    let resume = 0;
    while (v < value.length) {
      if (p < glob.length && (glob[p] === '?' || (glob[p] !== '*' && glob[p] === value[v]))) {
        p++;
        v++;
      } else if (p < glob.length && glob[p] === '*') {
        star = p++;
        resume = v;
      } else if (star >= 0) {
        p = star + 1;
        v = ++resume;
      } else {
        return false;
      }
    }
    while (p < glob.length && glob[p] === '*') p++;
    return p === glob.length;
  };
}
