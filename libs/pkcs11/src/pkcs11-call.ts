import { BrokerError, Code } from '@hsm-broker/errors';
import { lookupCkr, translateCkr } from './ckr-table.js';

function isPkcs11Failure(error: unknown): error is Error & { code: number } {
  if (!(error instanceof Error)) return false;
  const code: unknown = (error as Error & { code?: unknown }).code;
  return typeof code === 'number' && code !== 0;
}

function translateFailure(fn: string, error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  if (isPkcs11Failure(error)) return translateCkr(error.code, fn);
  return new BrokerError(Code.INTERNAL, `${fn} failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
    reason: 'PKCS11_BINDING_ERROR',
  });
}

/**
 * Runs one PKCS#11 function and translates its failure through the CKR table.
 * Errors that are not PKCS#11 return values (wrong argument types) are the
 * broker's own bugs and surface as INTERNAL.
 */
export function invoke<T>(fn: string, body: () => T): T {
  try {
    return body();
  } catch (error: unknown) {
    throw translateFailure(fn, error);
  }
}

/** {@link invoke} for a function that runs on the libuv thread pool (pkcs11js' `…Async` calls). */
export async function invokeAsync<T>(fn: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error: unknown) {
    throw translateFailure(fn, error);
  }
}

/**
 * The error for "the token does not show what it should": thrown inside
 * {@link Pkcs11Token.run} or {@link Pkcs11Token.runConcurrently}, it makes the
 * token reconnect once and try again, since a token initialised or restored
 * by another process is only seen after reconnecting.
 */
export function staleTokenView(message: string, details: Record<string, string | number | boolean>): BrokerError {
  return new BrokerError(Code.NOT_FOUND, message, { reason: staleViewReason, details });
}

/** The reason of {@link staleTokenView}. */
export const staleViewReason = 'TOKEN_VIEW_STALE';

/** What a failed call needs before it is tried again, if anything. */
export type Recovery = 'reconnect' | 'lookup-again' | undefined;

export function recoveryFor(error: unknown, staleViewRetried: boolean): Recovery {
  if (!(error instanceof BrokerError)) return undefined;
  if (error.reason === staleViewReason) return staleViewRetried ? undefined : 'reconnect';
  const ckr = error.details['ckr'];
  if (typeof ckr !== 'number') return undefined;
  if (lookupCkr(ckr, String(error.details['function'] ?? '')).resetsSession) return 'reconnect';
  if (error.reason === 'CKR_OBJECT_HANDLE_INVALID' || error.reason === 'CKR_KEY_HANDLE_INVALID') return 'lookup-again';
  return undefined;
}
