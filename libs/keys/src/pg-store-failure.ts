import { BrokerError, Code } from '@hsm-broker/errors';

/** Reasons the PostgreSQL store fails with; stable strings callers may match. */
export const storeReason = {
  /** The database cannot be reached (down, restarting, refusing connections, timed out). */
  unavailable: 'STORE_UNAVAILABLE',
  /** The database answered with an error that is not the caller's. */
  failed: 'STORE_FAILED',
  /** Another replica holds the key for longer than a change may wait. */
  keyBusy: 'KEY_BUSY',
} as const;

/** SQLSTATE classes and codes that mean "the database is not there right now". */
const unavailableStates = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '08007', '57014']);
const unavailableErrnos = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Serialisation failure and deadlock: safe to run the whole transaction again. */
export function isRetryableConflict(error: unknown): boolean {
  const state = (error as { code?: unknown }).code;
  return state === '40001' || state === '40P01';
}

/**
 * Translates what `pg` throws into the one error type. The message never
 * carries the connection string (it may hold a password): only the SQLSTATE
 * or errno and pg's own text, which names neither.
 */
export function storeFailure(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  const code = (error as { code?: unknown }).code;
  const text = error instanceof Error ? error.message : String(error);
  const connectionLost = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable/i.test(text);
  if ((typeof code === 'string' && (unavailableStates.has(code) || unavailableErrnos.has(code))) || connectionLost) {
    return new BrokerError(Code.UNAVAILABLE, `key store unavailable: ${text}`, { reason: storeReason.unavailable, retryable: true, failureClass: 'internal' });
  }
  if (code === '55P03') {
    return new BrokerError(Code.ABORTED, 'the key is being changed by another replica; try again', { reason: storeReason.keyBusy, retryable: true });
  }
  if (code === '23505') {
    return new BrokerError(Code.ALREADY_EXISTS, 'key_id: the key already exists', { reason: 'KEY_EXISTS' });
  }
  return new BrokerError(Code.INTERNAL, `key store failed${typeof code === 'string' ? ` (${code})` : ''}: ${text}`, { reason: storeReason.failed });
}
