/**
 * Trailing-metadata names the broker writes on a failed call and the client
 * reads back; defined once here so server and client cannot drift apart.
 */

/** The failure's stable reason (`KEY_NOT_FOUND`, `QUOTA_EXHAUSTED`, …). */
export const reasonTrailer = 'hsmb-reason';
/** `true` or `false`: whether the same request may succeed when tried again. */
export const retryableTrailer = 'hsmb-retryable';
/** Whole milliseconds the caller should wait before trying again (quota refusals). */
export const retryAfterTrailer = 'hsmb-retry-after-ms';
/** The same wait in whole seconds, rounded up, under HTTP's own name (RFC 9110 `Retry-After`). */
export const retryAfterSecondsTrailer = 'retry-after';
