import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer, retryAfterSecondsTrailer, retryAfterTrailer, retryableTrailer } from '@hsm-broker/errors';

/** gRPC's retry pushback (gRFC A6): a negative value means "do not retry". */
export const retryPushbackTrailer = 'grpc-retry-pushback-ms';

/**
 * Turns any failure into a gRPC error. The status and message come from the
 * BrokerError; trailers carry the stable reason and whether a retry can
 * help, for clients that branch on them. Unexpected errors are reported as
 * INTERNAL with a generic message so that nothing internal leaks.
 */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const failure = BrokerError.from(error);
  const metadata = new Metadata();
  metadata.set(reasonTrailer, failure.reason);
  metadata.set(retryableTrailer, String(failure.retryable));
  const retryAfterMs = failure.details['retryAfterMs'];
  if (typeof retryAfterMs === 'number') {
    metadata.set(retryAfterTrailer, String(Math.ceil(retryAfterMs)));
    metadata.set(retryAfterSecondsTrailer, String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
  if (failure.code === Code.UNAVAILABLE && failure.failureClass === 'appliance') {
    // The fleet refused: the broker has already tried every appliance it
    // could within the deadline. A client retry (grpc-js retries UNAVAILABLE
    // for idempotent methods) would only ask the same fleet again and again,
    // turning a fast refusal into DEADLINE_EXCEEDED; a negative pushback
    // tells gRPC clients not to. Refusals from a stopped replica (transport
    // errors) carry no trailer and are still retried on another replica.
    metadata.set(retryPushbackTrailer, '-1');
  }
  const message = failure.code === Code.INTERNAL && !(error instanceof BrokerError) ? 'internal error' : failure.message;
  // Code numbers are gRPC's own, so the conversion is the identity.
  const code: status = failure.code as number;
  return { code, details: message, message, metadata };
}
