import { createHash } from 'node:crypto';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import { keyIdPattern } from './key-model.js';
import type { KeyState, KeyUsage } from './key-model.js';

/** One key version in a backup: its material wrapped under the backup key. */
export interface ArchivedVersion {
  version: number;
  createdAt: number;
  /** Base64 of the CKM_AES_KEY_WRAP_PAD blob. */
  wrapped: string;
  /** Base64 DER SubjectPublicKeyInfo, for key pairs. */
  publicKey?: string;
}

/** One key in a backup, with its metadata. */
export interface ArchivedKey {
  keyId: string;
  keySpec: KeyMaterialSpec;
  keyUsage: KeyUsage;
  keyState: KeyState;
  description: string;
  labels: Record<string, string>;
  createdAt: number;
  deletionTime?: number;
  primaryVersion: number;
  minDecryptionVersion: number;
  rotationPeriodDays: number;
  nextRotationTime?: number;
  versions: ArchivedVersion[];
}

/** The manifest and contents of a backup. */
export interface BackupContents {
  format: 'hsm-broker-backup';
  formatVersion: 1;
  createdAt: number;
  /** Id of the backup key every version is wrapped under. */
  backupKeyId: string;
  keys: ArchivedKey[];
}

/** The first line of a backup file. */
interface BackupHeader {
  magic: 'HSMB-BACKUP';
  formatVersion: 1;
  /** SHA-256 of the payload (everything after the first line), hex. */
  sha256: string;
  /** HMAC-SHA-256 of the payload made inside the backup HSM, base64. */
  seal: string;
  payloadBytes: number;
}

function corrupt(message: string): BrokerError {
  return new BrokerError(Code.INVALID_ARGUMENT, `backup: ${message}; nothing was restored`, {
    reason: 'INVALID_BACKUP',
    details: { field: 'backup' },
  });
}

/** The payload bytes of a backup (canonical JSON of its contents). */
export function encodePayload(contents: BackupContents): Buffer {
  return Buffer.from(JSON.stringify(contents), 'utf8');
}

/** Assembles a backup file: a header line with the digest and seal, then the payload. */
export function encodeBackup(payload: Buffer, seal: Buffer): Buffer {
  const header: BackupHeader = {
    magic: 'HSMB-BACKUP',
    formatVersion: 1,
    sha256: createHash('sha256').update(payload).digest('hex'),
    seal: seal.toString('base64'),
    payloadBytes: payload.length,
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), payload]);
}

/**
 * Splits and checks a backup file: header, length and digest. The seal is
 * returned for the backup HSM to check. Anything malformed or truncated is
 * refused with INVALID_ARGUMENT before anything changes.
 */
export function decodeBackup(file: Buffer): { payload: Buffer; seal: Buffer; contents: BackupContents } {
  const newline = file.indexOf(0x0a);
  if (newline <= 0) throw corrupt('not a backup file (no header line)');
  let header: Partial<BackupHeader>;
  try {
    header = JSON.parse(file.subarray(0, newline).toString('utf8')) as Partial<BackupHeader>;
  } catch {
    throw corrupt('not a backup file (unreadable header)');
  }
  if (header.magic !== 'HSMB-BACKUP') throw corrupt('not a backup file (bad magic)');
  if (header.formatVersion !== 1) throw corrupt(`unsupported format version ${quoteInput(String(header.formatVersion))}`);
  const payload = file.subarray(newline + 1);
  if (typeof header.payloadBytes !== 'number' || payload.length !== header.payloadBytes) {
    throw corrupt(`truncated or padded: header announces ${quoteInput(String(header.payloadBytes))} payload bytes, file has ${String(payload.length)}`);
  }
  if (createHash('sha256').update(payload).digest('hex') !== header.sha256) throw corrupt('digest mismatch (the file was altered or damaged)');
  if (typeof header.seal !== 'string') throw corrupt('missing seal');
  let contents: BackupContents;
  try {
    contents = JSON.parse(payload.toString('utf8')) as BackupContents;
  } catch {
    throw corrupt('unreadable payload');
  }
  if (contents.format !== 'hsm-broker-backup' || contents.formatVersion !== 1 || !Array.isArray(contents.keys)) {
    throw corrupt('payload is not a broker backup');
  }
  for (const key of contents.keys) {
    if (!keyIdPattern.test(key.keyId) || !Array.isArray(key.versions) || key.versions.length === 0) {
      throw corrupt(`key entry ${quoteInput(String(key.keyId))} is malformed`);
    }
  }
  return { payload, seal: Buffer.from(header.seal, 'base64'), contents };
}
