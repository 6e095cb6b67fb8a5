export { BrokerError } from './broker-error.js';
export type { BrokerErrorOptions, FailureClass, SerializedBrokerError } from './broker-error.js';
export { quoteInput, quotedInputLength } from './caller-input.js';
export { Code, codeName } from './status-code.js';
export { reasonTrailer, retryAfterSecondsTrailer, retryAfterTrailer, retryableTrailer } from './wire-trailers.js';
