import { BrokerError } from '@hsm-broker/errors';

/**
 * Non-secret key/value pairs bound to a ciphertext: decryption succeeds only
 * when the same map is presented again. Use it to say what the data is for
 * (`{ tenant: 'acme', table: 'invoices' }`), never to carry secrets.
 */
export type EncryptionContext = Readonly<Record<string, string>>;

const maxKeyBytes = 0xffff;
const maxValueBytes = 0xffff_ffff;

// A lone surrogate has no UTF-8 form: the encoder (and protobuf on the way to
// the broker) would silently turn it into U+FFFD, so two different contexts
// could authenticate as the same bytes.
const loneSurrogate = /\p{Cs}/u;

/**
 * Encodes an encryption context as bytes that do not depend on the order in
 * which the map was built, so the same context always authenticates the same
 * way. Entries are sorted by the UTF-8 bytes of their keys (not by UTF-16 code
 * units, which order astral characters differently) and each is written as a
 * u16 big-endian key length, the key, a u32 big-endian value length and the
 * value. The lengths make the encoding unambiguous: `{a: 'b=c'}` and
 * `{'a=b': 'c'}` encode differently. An empty map encodes as an empty buffer.
 */
export function encodeEncryptionContext(context: EncryptionContext): Buffer {
  const entries = Object.entries(context).map(([key, value]) => {
    if (typeof value !== 'string') {
      throw BrokerError.invalidArgument(
        'encryptionContext',
        `value of '${key}' is a ${typeof value}, not a string`,
      );
    }
    if (loneSurrogate.test(key) || loneSurrogate.test(value)) {
      throw BrokerError.invalidArgument(
        'encryptionContext',
        `entry '${key}' is not well-formed Unicode (lone surrogate)`,
      );
    }
    const keyBytes = Buffer.from(key, 'utf8');
    const valueBytes = Buffer.from(value, 'utf8');
    if (keyBytes.length > maxKeyBytes) {
      throw BrokerError.invalidArgument(
        'encryptionContext',
        `key of ${String(keyBytes.length)} bytes exceeds ${String(maxKeyBytes)} bytes`,
      );
    }
    if (valueBytes.length > maxValueBytes) {
      throw BrokerError.invalidArgument(
        'encryptionContext',
        `value of '${key}' exceeds ${String(maxValueBytes)} bytes`,
      );
    }
    return { keyBytes, valueBytes };
  });
  entries.sort((a, b) => Buffer.compare(a.keyBytes, b.keyBytes));

  const parts: Buffer[] = [];
  for (const { keyBytes, valueBytes } of entries) {
    const keyLength = Buffer.alloc(2);
    keyLength.writeUInt16BE(keyBytes.length);
    const valueLength = Buffer.alloc(4);
    valueLength.writeUInt32BE(valueBytes.length);
    parts.push(keyLength, keyBytes, valueLength, valueBytes);
  }
  return Buffer.concat(parts);
}
