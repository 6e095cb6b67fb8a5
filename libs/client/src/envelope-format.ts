import { BrokerError, Code } from '@hsm-broker/errors';

/*
 * The byte layout of an envelope, format version 1:
 *
 *   offset  size  field
 *   0       4     magic "HSBE" (hsm-broker envelope)
 *   4       1     format version (1)
 *   5       2     N = length of the wrapped data key, u16 big-endian, N >= 1
 *   7       N     wrapped data key: GenerateDataKey's ciphertext_blob, as sent
 *   7+N     12    AES-GCM IV
 *   19+N    16    AES-GCM tag
 *   35+N    rest  AES-256-GCM ciphertext of the data
 *
 * Everything before the tag is the "header". It is authenticated as GCM
 * additional data together with the encoded encryption context, so changing
 * the version, the wrapped key or the IV fails decryption just as changing the
 * ciphertext or the tag does. The wrapped key needs no separate key id: the
 * broker's ciphertext_blob already names the key and version it was made with.
 */

/** The four bytes every envelope starts with. */
export const envelopeMagic: Buffer = Buffer.from('HSBE', 'latin1');
/** The only format version this code writes and reads. */
export const envelopeVersion = 1;
/** Length of the AES-GCM IV, in bytes. */
export const ivLength = 12;
/** Length of the AES-GCM tag, in bytes. */
export const tagLength = 16;

const versionOffset = envelopeMagic.length;
const wrappedKeyLengthOffset = versionOffset + 1;
const wrappedKeyOffset = wrappedKeyLengthOffset + 2;
const maxWrappedKeyLength = 0xffff;

/** An envelope taken apart. Every buffer is a view into the parsed blob. */
export interface EnvelopeParts {
  /** The bytes authenticated as GCM additional data (before the context). */
  header: Buffer;
  wrappedKey: Buffer;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * Builds the header of an envelope: magic, version, the length-prefixed
 * wrapped key and the IV.
 */
export function envelopeHeader(wrappedKey: Uint8Array, iv: Uint8Array): Buffer {
  // Both come from the broker or from us, never from the caller, so a wrong
  // size is a fault on our side and not an invalid argument.
  if (wrappedKey.length === 0 || wrappedKey.length > maxWrappedKeyLength) {
    throw new BrokerError(
      Code.INTERNAL,
      `envelope: wrapped data key of ${String(wrappedKey.length)} bytes does not fit ` +
        `(1 to ${String(maxWrappedKeyLength)} bytes)`,
      { reason: 'ENVELOPE_WRAPPED_KEY_SIZE' },
    );
  }
  if (iv.length !== ivLength) {
    throw new BrokerError(
      Code.INTERNAL,
      `envelope: IV of ${String(iv.length)} bytes, expected ${String(ivLength)}`,
    );
  }
  const fixed = Buffer.alloc(wrappedKeyOffset);
  envelopeMagic.copy(fixed, 0);
  fixed.writeUInt8(envelopeVersion, versionOffset);
  fixed.writeUInt16BE(wrappedKey.length, wrappedKeyLengthOffset);
  return Buffer.concat([fixed, wrappedKey, iv]);
}

/** Joins a header made by {@link envelopeHeader}, a tag and a ciphertext into one blob. */
export function serializeEnvelope(header: Uint8Array, tag: Uint8Array, ciphertext: Uint8Array): Buffer {
  if (tag.length !== tagLength) {
    throw new BrokerError(
      Code.INTERNAL,
      `envelope: tag of ${String(tag.length)} bytes, expected ${String(tagLength)}`,
    );
  }
  return Buffer.concat([header, tag, ciphertext]);
}

/**
 * Takes an envelope apart without decrypting it. Rejects, with
 * INVALID_ARGUMENT naming what is wrong, anything that is not a complete
 * version 1 envelope; whether the parts are authentic is only known once the
 * data key has decrypted them.
 */
export function parseEnvelope(blob: Uint8Array): EnvelopeParts {
  const bytes = Buffer.isBuffer(blob) ? blob : Buffer.from(blob.buffer, blob.byteOffset, blob.length);

  if (bytes.length < envelopeMagic.length) {
    throw truncated(bytes.length, envelopeMagic.length, 'the magic');
  }
  if (!bytes.subarray(0, envelopeMagic.length).equals(envelopeMagic)) {
    throw BrokerError.invalidArgument(
      'envelope',
      `bad magic 0x${bytes.subarray(0, envelopeMagic.length).toString('hex')}, ` +
        `expected 0x${envelopeMagic.toString('hex')} ('HSBE'): not an hsm-broker envelope`,
      'ENVELOPE_BAD_MAGIC',
    );
  }
  if (bytes.length < versionOffset + 1) {
    throw truncated(bytes.length, versionOffset + 1, 'the format version');
  }
  const version = bytes.readUInt8(versionOffset);
  if (version !== envelopeVersion) {
    throw BrokerError.invalidArgument(
      'envelope',
      `unsupported format version ${String(version)} (supported: ${String(envelopeVersion)})`,
      'ENVELOPE_UNSUPPORTED_VERSION',
    );
  }
  if (bytes.length < wrappedKeyOffset) {
    throw truncated(bytes.length, wrappedKeyOffset, 'the wrapped key length');
  }
  const wrappedKeyLength = bytes.readUInt16BE(wrappedKeyLengthOffset);
  if (wrappedKeyLength === 0) {
    throw BrokerError.invalidArgument(
      'envelope',
      'wrapped data key length is 0',
      'ENVELOPE_MALFORMED',
    );
  }
  const ivOffset = wrappedKeyOffset + wrappedKeyLength;
  if (bytes.length < ivOffset) {
    throw truncated(bytes.length, ivOffset, 'the wrapped data key');
  }
  const tagOffset = ivOffset + ivLength;
  if (bytes.length < tagOffset) {
    throw truncated(bytes.length, tagOffset, 'the IV');
  }
  const ciphertextOffset = tagOffset + tagLength;
  if (bytes.length < ciphertextOffset) {
    throw truncated(bytes.length, ciphertextOffset, 'the tag');
  }

  return {
    header: bytes.subarray(0, tagOffset),
    wrappedKey: bytes.subarray(wrappedKeyOffset, ivOffset),
    iv: bytes.subarray(ivOffset, tagOffset),
    tag: bytes.subarray(tagOffset, ciphertextOffset),
    ciphertext: bytes.subarray(ciphertextOffset),
  };
}

function truncated(actual: number, needed: number, part: string): BrokerError {
  return BrokerError.invalidArgument(
    'envelope',
    `truncated: ${String(actual)} bytes, but ${part} needs at least ${String(needed)}`,
    'ENVELOPE_TRUNCATED',
  );
}
