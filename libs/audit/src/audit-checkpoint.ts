import { createHash, createPublicKey, verify } from 'node:crypto';
import type { AuditCheckpoint } from './audit-entry.js';

/**
 * The exact bytes a checkpoint signature covers. Versioned and
 * newline-separated, so no JSON canonicalisation is needed to check it.
 */
export function checkpointStatement(covers: { seq: number; hash: string }, time: string, fingerprint: string): Buffer {
  return Buffer.from(`hsmb-audit-checkpoint/v1\n${String(covers.seq)}\n${covers.hash}\n${time}\n${fingerprint}\n`, 'utf8');
}

/** SHA-256 (hex) of a DER SubjectPublicKeyInfo: how an audit signing key is pinned. */
export function keyFingerprint(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

/** Why a checkpoint's signature does not stand, or undefined when it does. */
export function checkpointSignatureProblem(checkpoint: AuditCheckpoint): string | undefined {
  const spki = Buffer.from(checkpoint.key.spki, 'base64');
  if (keyFingerprint(spki) !== checkpoint.key.fingerprint) return 'its public key does not match the fingerprint it names';
  let valid: boolean;
  try {
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    valid = verify('sha256', checkpointStatement(checkpoint.covers, checkpoint.time, checkpoint.key.fingerprint), key, Buffer.from(checkpoint.signature, 'base64'));
  } catch (error: unknown) {
    return `its key or signature cannot be read (${error instanceof Error ? error.message : String(error)})`;
  }
  return valid ? undefined : 'its signature does not verify';
}
