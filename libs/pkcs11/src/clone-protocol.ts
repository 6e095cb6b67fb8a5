import type { EnrollmentKey } from './fleet-kek.js';
import type { WrappedKey } from './key-operations.js';
import type { KeyMaterialSpec } from './key-templates.js';

// The clone endpoint of an appliance node: the operations that p11-kit's RPC
// cannot carry (AES key wrap) or that need the node's own security officer,
// spoken as JSON over HTTPS with mutual TLS. The node performs them inside its
// HSM; only wrapped blobs and public keys cross the wire.

/**
 * The clone operations, their arguments and results. The user-role ones copy
 * key objects; the officer ones carry trusted wrapping keys (the fleet KEK,
 * the backup key) between HSMs inside one officer session.
 */
export interface CloneOperations {
  wrapKey(args: { spec: KeyMaterialSpec; label: string; kekLabel: string }): WrappedKey;
  unwrapKey(args: { spec: KeyMaterialSpec; label: string; kekLabel: string; key: WrappedKey }): null;
  kekId(args: { label: string }): string | null;
  generateKek(args: { label: string; kekId: string }): null;
  createEnrollmentKey(args: Record<string, never>): EnrollmentKey;
  wrapKekFor(args: { label: string; peer: EnrollmentKey }): Buffer;
  receiveKek(args: { label: string; kekId: string; wrapped: Buffer }): null;
}

/** The name of a clone operation. */
export type CloneOperation = keyof CloneOperations;

/** Clone operations a crypto-user session performs (`POST /v1/user/{op}`). */
export const cloneUserOperations: ReadonlySet<string> = new Set<CloneOperation>(['wrapKey', 'unwrapKey']);

/** Clone operations of an officer session (`POST /v1/officer/{session}/{op}`). */
export const cloneOfficerOperations: ReadonlySet<string> = new Set<CloneOperation>([
  'kekId',
  'generateKek',
  'createEnrollmentKey',
  'wrapKekFor',
  'receiveKek',
]);

/** The largest request or response body either side accepts. */
export const cloneBodyLimitBytes = 1024 * 1024;

/**
 * JSON with Buffers carried as `{"$base64": "..."}` (Buffer's own toJSON
 * would make an array of numbers four times the size).
 */
export function encodeCloneJson(value: unknown): string {
  return JSON.stringify(value, function replacer(this: Record<string, unknown>, key: string, encoded: unknown) {
    const original = this[key];
    return Buffer.isBuffer(original) ? { $base64: original.toString('base64') } : encoded;
  });
}

/** Reverses {@link encodeCloneJson}. */
export function decodeCloneJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      if (keys.length === 1 && typeof record['$base64'] === 'string') return Buffer.from(record['$base64'], 'base64');
    }
    return value;
  });
}
