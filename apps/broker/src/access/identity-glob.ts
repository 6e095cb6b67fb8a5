/**
 * A glob over identities or key ids: `*` stands for any run of characters
 * (slashes included, as in IAM resource patterns), `?` for one character;
 * everything else matches itself. `spiffe://corp/vpc-a/*` thus covers every
 * workload under vpc-a, and `*` everything.
 */
export type Glob = (value: string) => boolean;

/** Compiles a glob once, so that matching a call is one regular-expression test. */
export function compileGlob(pattern: string): Glob {
  const source = [...pattern]
    .map((character) => (character === '*' ? '.*' : character === '?' ? '.' : character.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  const expression = new RegExp(`^${source}$`, 'su');
  return (value) => expression.test(value);
}
