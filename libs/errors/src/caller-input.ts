/** Characters of caller input an error message may quote. */
export const quotedInputLength = 64;

/** Input made only of these characters reads unambiguously without quotes. */
const plainInput = /^[A-Za-z0-9/_.:@+=-]+$/;

/**
 * Quotes caller input (a key id, an appliance id, a label key…) for an error
 * message or a log line. A short plain identifier stays as it is; anything
 * else is JSON-escaped, so newlines and control characters cannot forge log
 * lines; input longer than {@link quotedInputLength} characters is cut to
 * that prefix and its full length is given. A 1 MB key id comes back as
 * `"aaaa…" (1048576 characters)`, never whole: an error must not amplify
 * what the caller sent, nor repeat a secret pasted into the wrong field.
 */
export function quoteInput(value: string, max = quotedInputLength): string {
  if (value.length <= max) return plainInput.test(value) ? value : JSON.stringify(value);
  // Array.from splits by code point, so a cut never leaves half a surrogate pair.
  const prefix = Array.from(value.slice(0, max * 2)).slice(0, max).join('');
  return `${JSON.stringify(prefix)}… (${String(value.length)} characters)`;
}
