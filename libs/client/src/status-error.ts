import type { Metadata } from '@grpc/grpc-js';
import { BrokerError, Code, codeName, reasonTrailer as reasonKey, retryAfterTrailer, retryableTrailer as retryableKey } from '@hsm-broker/errors';

/** The parts of a grpc-js status (or `ServiceError`) that a failure is built from. */
export interface GrpcStatus {
  code: number;
  details: string;
  metadata?: Metadata | null | undefined;
}

/**
 * Turns a gRPC status received from the broker into a {@link BrokerError}.
 *
 * The status code and message are kept as sent. The broker adds the stable
 * reason, the retry verdict and (for quota refusals) the wait as trailing metadata, because a gRPC status has
 * no room for them; when either is missing (an older broker, or a failure
 * raised by grpc-js itself such as a deadline) BrokerError's defaults for the
 * code apply.
 */
export function errorFromStatus(status: GrpcStatus, cause?: unknown): BrokerError {
  // A status outside the gRPC range (or OK, which is no failure) can only come
  // from a confused peer; UNKNOWN is what gRPC itself uses for such cases.
  const code: Code =
    Number.isInteger(status.code) && status.code !== 0 && Code[status.code] !== undefined
      ? status.code
      : Code.UNKNOWN;
  // grpc-js' own messages can end in whitespace ("Resolution note: ").
  const details = status.details.trimEnd();
  const message = details === '' ? codeName(code) : details;
  const reason = firstString(status.metadata, reasonKey);
  const retryable = parseRetryable(firstString(status.metadata, retryableKey));
  const retryAfter = firstString(status.metadata, retryAfterTrailer);
  const retryAfterMs = retryAfter !== undefined && /^\d{1,9}$/.test(retryAfter) ? Number(retryAfter) : undefined;
  return new BrokerError(code, message, {
    ...(reason === undefined ? {} : { reason }),
    // Quota refusals say how long to wait; callers read it as details.retryAfterMs.
    ...(retryAfterMs === undefined ? {} : { details: { retryAfterMs } }),
    ...(retryable === undefined ? {} : { retryable }),
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Turns anything a call rejected with into a {@link BrokerError}: gRPC
 * statuses through {@link errorFromStatus}, everything else (a request that
 * failed to serialise, a local I/O error) through `BrokerError.from`.
 */
export function toBrokerError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  if (isGrpcStatus(error)) return errorFromStatus(error, error);
  return BrokerError.from(error);
}

function isGrpcStatus(value: unknown): value is GrpcStatus & Error {
  if (!(value instanceof Error)) return false;
  const candidate = value as Partial<GrpcStatus>;
  return typeof candidate.code === 'number' && typeof candidate.details === 'string';
}

function firstString(metadata: Metadata | null | undefined, key: string): string | undefined {
  if (metadata == null) return undefined;
  for (const value of metadata.get(key)) {
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

function parseRetryable(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const normalized = value.toLowerCase();
  if (normalized === 'true') return true;
  if (normalized === 'false') return false;
  // Anything else is ignored rather than guessed at: the code's default stands.
  return undefined;
}
