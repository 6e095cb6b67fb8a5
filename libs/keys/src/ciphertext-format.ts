import { BrokerError, Code } from '@hsm-broker/errors';

/**
 * Ciphertext produced by Encrypt (format version 1):
 *
 *   "HB" | 0x01 | u8 keyIdLength | keyId (UTF-8) | u32 keyVersion | 12-byte IV | GCM ciphertext | 16-byte tag
 *
 * The header names the key and version, so Decrypt needs nothing else. The
 * header and the canonical encryption context are the GCM additional data:
 * changing either, or any other bit, fails authentication.
 */
const magic = Buffer.from('HB', 'ascii');
const formatVersion = 1;
/** GCM IV length in bytes. */
export const ivLength = 12;
/** GCM tag length in bytes. */
export const tagLength = 16;
/** Longest key id, in bytes (the key-id syntax allows 128 ASCII characters). */
const maxKeyIdBytes = 128;
/** Most plaintext one Encrypt seals (the API's limit). */
export const maxPlaintextBytes = 65536;
/**
 * The largest ciphertext Encrypt can make: the longest header, the IV, the
 * largest plaintext (GCM adds no padding) and the tag. Anything longer is not
 * a broker ciphertext, whatever its header says, and is refused before a
 * worker sees it.
 */
export const maxCiphertextBytes = magic.length + 2 + maxKeyIdBytes + 4 + ivLength + maxPlaintextBytes + tagLength;

/** The parts of a ciphertext. */
export interface ParsedCiphertext {
  keyId: string;
  keyVersion: number;
  header: Buffer;
  iv: Buffer;
  /** GCM ciphertext followed by the tag. */
  sealed: Buffer;
}

function invalid(message: string, reason = 'INVALID_CIPHERTEXT'): BrokerError {
  return new BrokerError(Code.INVALID_ARGUMENT, `ciphertext: ${message}`, {
    reason,
    details: { field: 'ciphertext' },
  });
}

/** The header that starts every ciphertext made with this key version. */
export function encodeHeader(keyId: string, keyVersion: number): Buffer {
  const id = Buffer.from(keyId, 'utf8');
  const header = Buffer.alloc(magic.length + 2 + id.length + 4);
  magic.copy(header, 0);
  header[2] = formatVersion;
  header[3] = id.length;
  id.copy(header, 4);
  header.writeUInt32BE(keyVersion, 4 + id.length);
  return header;
}

/** Splits a ciphertext into its parts, refusing anything malformed or truncated. */
export function parseCiphertext(ciphertext: Buffer): ParsedCiphertext {
  if (ciphertext.length > maxCiphertextBytes) {
    throw invalid(`is ${String(ciphertext.length)} bytes; no broker ciphertext is longer than ${String(maxCiphertextBytes)}`, 'CIPHERTEXT_TOO_LARGE');
  }
  if (ciphertext.length < magic.length + 2) throw invalid('too short to be a broker ciphertext');
  if (!ciphertext.subarray(0, magic.length).equals(magic)) throw invalid('not a broker ciphertext (bad magic)');
  if (ciphertext[2] !== formatVersion) throw invalid(`unsupported format version ${String(ciphertext[2])}`);
  const idLength = ciphertext[3] ?? 0;
  const headerLength = 4 + idLength + 4;
  if (idLength === 0 || ciphertext.length < headerLength + ivLength + tagLength) throw invalid('truncated');
  const keyId = ciphertext.subarray(4, 4 + idLength).toString('utf8');
  const keyVersion = ciphertext.readUInt32BE(4 + idLength);
  return {
    keyId,
    keyVersion,
    header: ciphertext.subarray(0, headerLength),
    iv: ciphertext.subarray(headerLength, headerLength + ivLength),
    sealed: ciphertext.subarray(headerLength + ivLength),
  };
}

/**
 * An unambiguous encoding of an encryption context: entries sorted by the
 * UTF-8 bytes of their keys, each as u16 key length, key, u32 value length,
 * value. Two maps encode equally exactly when they are equal.
 */
export function encodeContext(context: Record<string, string>): Buffer {
  const entries = Object.entries(context)
    .map(([key, value]) => [Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8')] as const)
    .sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [];
  for (const [key, value] of entries) {
    const lengths = Buffer.alloc(6);
    lengths.writeUInt16BE(key.length, 0);
    lengths.writeUInt32BE(value.length, 2);
    parts.push(lengths.subarray(0, 2), key, lengths.subarray(2), value);
  }
  return Buffer.concat(parts);
}

/** The GCM additional data for a header and context. */
export function additionalData(header: Buffer, context: Record<string, string>): Buffer {
  return Buffer.concat([header, encodeContext(context)]);
}
