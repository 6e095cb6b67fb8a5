import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { BrokerError, Code } from '@hsm-broker/errors';
import { encodeEncryptionContext, type EncryptionContext } from './encryption-context.js';
import {
  envelopeHeader,
  ivLength,
  serializeEnvelope,
  tagLength,
  type EnvelopeParts,
} from './envelope-format.js';

const dataKeyLength = 32;

/**
 * Encrypts `data` locally with AES-256-GCM under a plaintext data key and
 * packs the result, with the wrapped form of that key, into one envelope.
 * The caller keeps ownership of `dataKey` and should zero it afterwards.
 */
export function sealEnvelope(
  dataKey: Buffer,
  wrappedKey: Uint8Array,
  data: Uint8Array,
  context: EncryptionContext,
): Buffer {
  checkDataKey(dataKey);
  // A random 96-bit IV is safe here because every envelope has its own data
  // key: the IV never repeats under one key, whatever the RNG does.
  const iv = randomBytes(ivLength);
  const header = envelopeHeader(wrappedKey, iv);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: tagLength });
  cipher.setAAD(additionalData(header, context));
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return serializeEnvelope(header, cipher.getAuthTag(), ciphertext);
}

/**
 * Decrypts and authenticates a parsed envelope with its unwrapped data key.
 * A changed byte anywhere in the envelope, or a context other than the one it
 * was sealed with, fails with INVALID_ARGUMENT (`ENVELOPE_AUTHENTICATION_FAILED`).
 */
export function openEnvelope(
  envelope: EnvelopeParts,
  dataKey: Buffer,
  context: EncryptionContext,
): Buffer {
  checkDataKey(dataKey);
  const decipher = createDecipheriv('aes-256-gcm', dataKey, envelope.iv, {
    authTagLength: tagLength,
  });
  decipher.setAAD(additionalData(envelope.header, context));
  decipher.setAuthTag(envelope.tag);
  const plaintext = decipher.update(envelope.ciphertext);
  try {
    return Buffer.concat([plaintext, decipher.final()]);
  } catch (error: unknown) {
    throw new BrokerError(
      Code.INVALID_ARGUMENT,
      'envelope: authentication failed: the envelope was altered or the encryption context differs',
      { reason: 'ENVELOPE_AUTHENTICATION_FAILED', details: { field: 'envelope' }, cause: error },
    );
  } finally {
    // Unauthenticated plaintext must not outlive the failed check.
    plaintext.fill(0);
  }
}

function additionalData(header: Uint8Array, context: EncryptionContext): Buffer {
  // The header is self-delimiting (its one variable field is length-prefixed),
  // so simple concatenation with the context encoding is unambiguous.
  return Buffer.concat([header, encodeEncryptionContext(context)]);
}

function checkDataKey(dataKey: Buffer): void {
  if (dataKey.length !== dataKeyLength) {
    throw new BrokerError(
      Code.INTERNAL,
      `envelope: data key of ${String(dataKey.length)} bytes, expected ${String(dataKeyLength)} (AES-256)`,
      { reason: 'DATA_KEY_SIZE' },
    );
  }
}
