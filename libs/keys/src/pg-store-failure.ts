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

/** What the server log keeps of a store failure; the caller's error carries none of it. */
export interface StoreFailureDetail {
  /** SQLSTATE or errno, when pg gave one. */
  code: string | undefined;
  /** pg's own text: may name tables, columns and statements. */
  text: string;
  /** The table, constraint and column pg named, when it did. Row values (pg's `detail`) are left out. */
  table?: string;
  constraint?: string;
  column?: string;
}

/** The facts of a pg failure for the server log. */
export function storeFailureDetail(error: unknown): StoreFailureDetail {
  const facts = error as { code?: unknown; table?: unknown; constraint?: unknown; column?: unknown };
  const named = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);
  const detail: StoreFailureDetail = { code: named(facts.code), text: error instanceof Error ? error.message : String(error) };
  const table = named(facts.table);
  const constraint = named(facts.constraint);
  const column = named(facts.column);
  if (table) detail.table = table;
  if (constraint) detail.constraint = constraint;
  if (column) detail.column = column;
  return detail;
}

/** pg's own texts for a connection that is gone or a statement that ran out of time. */
const connectionLostText = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable|Query read timeout/i;

/**
 * Translates what `pg` throws into the one error type. The message is one
 * of a few stable sentences with the SQLSTATE or errno at most: pg's text
 * can quote statements, tables and values, and a connection error names the
 * host, so it goes to the server log ({@link storeFailureDetail}), never to
 * a caller.
 */
export function storeFailure(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  const { code, text } = storeFailureDetail(error);
  const known = code && /^[0-9A-Z]{5}$|^E[A-Z_]+$/.test(code) ? code : undefined;
  const shown = known ? ` (${/^E/.test(known) ? known : `SQLSTATE ${known}`})` : '';
  if ((code !== undefined && (unavailableStates.has(code) || unavailableErrnos.has(code))) || connectionLostText.test(text)) {
    return new BrokerError(Code.UNAVAILABLE, `key store unavailable${shown}`, { reason: storeReason.unavailable, retryable: true, failureClass: 'internal' });
  }
  if (code === '55P03') {
    return new BrokerError(Code.ABORTED, 'the key is being changed by another replica; try again', { reason: storeReason.keyBusy, retryable: true });
  }
  if (code === '23505') {
    return new BrokerError(Code.ALREADY_EXISTS, 'key_id: the key already exists', { reason: 'KEY_EXISTS' });
  }
  return new BrokerError(Code.INTERNAL, `key store failed${shown}`, { reason: storeReason.failed });
}
