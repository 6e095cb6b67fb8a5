export { BrokerError } from './broker-error.js';
export type { BrokerErrorOptions, FailureClass, SerializedBrokerError } from './broker-error.js';
export { Code, codeName } from './status-code.js';
export { reasonTrailer, retryAfterTrailer, retryableTrailer } from './wire-trailers.js';
