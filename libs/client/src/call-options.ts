import { Metadata } from '@grpc/grpc-js';
import { BrokerError } from '@hsm-broker/errors';

/** Per-call settings accepted by every {@link BrokerClient} method. */
export interface BrokerCallOptions {
  /**
   * Time the call may take, in milliseconds from now; overrides the client's
   * `deadlineMs` for this call. The broker retries idempotent operations on
   * another appliance only within this budget.
   */
  deadlineMs?: number;
  /** Request metadata sent with the call, e.g. a request id for the audit trail. */
  metadata?: Metadata | Readonly<Record<string, string>>;
  /** Cancels the call when aborted; the promise then rejects with CANCELLED. */
  signal?: AbortSignal;
}

/**
 * Checks a deadline given in milliseconds. `Infinity` is accepted and means
 * "no deadline", which grpc-js supports; zero, negative and NaN values are
 * mistakes that would otherwise fail every call with DEADLINE_EXCEEDED.
 */
export function checkDeadlineMs(field: string, value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw BrokerError.invalidArgument(
      field,
      `must be a positive number of milliseconds, got ${String(value)}`,
    );
  }
  return value;
}

/** The absolute deadline grpc-js expects, from a relative one. */
export function deadlineFrom(deadlineMs: number, now = Date.now()): number {
  return deadlineMs === Infinity ? Infinity : now + deadlineMs;
}

/** Metadata for one call, from whichever form the caller gave. */
export function toMetadata(metadata: BrokerCallOptions['metadata']): Metadata {
  if (metadata === undefined) return new Metadata();
  if (metadata instanceof Metadata) return metadata.clone();
  const result = new Metadata();
  for (const [key, value] of Object.entries(metadata)) result.add(key, value);
  return result;
}
