import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import {
  envelopeHeader,
  envelopeMagic,
  ivLength,
  parseEnvelope,
  serializeEnvelope,
  tagLength,
} from './envelope-format.js';

const wrappedKey = Buffer.from('wrapped-data-key-from-the-broker');
const iv = Buffer.alloc(ivLength, 0x11);
const tag = Buffer.alloc(tagLength, 0x22);
const ciphertext = Buffer.from('ciphertext bytes');

function sample(): Buffer {
  return serializeEnvelope(envelopeHeader(wrappedKey, iv), tag, ciphertext);
}

function rejectsWith(blob: Uint8Array, reason: string, message: RegExp): void {
  assert.throws(
    () => parseEnvelope(blob),
    (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      assert.equal(error.reason, reason);
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('envelope format', () => {
  it('lays out magic, version, length-prefixed wrapped key, IV, tag, ciphertext', () => {
    const blob = sample();
    assert.equal(blob.subarray(0, 4).toString('latin1'), 'HSBE');
    assert.equal(blob[4], 1);
    assert.equal(blob.readUInt16BE(5), wrappedKey.length);
    assert.deepEqual(blob.subarray(7, 7 + wrappedKey.length), wrappedKey);
    assert.equal(blob.length, 7 + wrappedKey.length + ivLength + tagLength + ciphertext.length);
  });

  it('parses what it serialises', () => {
    const parts = parseEnvelope(sample());
    assert.deepEqual(parts.wrappedKey, wrappedKey);
    assert.deepEqual(parts.iv, iv);
    assert.deepEqual(parts.tag, tag);
    assert.deepEqual(parts.ciphertext, ciphertext);
    assert.deepEqual(parts.header, envelopeHeader(wrappedKey, iv));
  });

  it('parses a plain Uint8Array view as well as a Buffer', () => {
    const blob = sample();
    const padded = new Uint8Array(blob.length + 8);
    padded.set(blob, 4);
    const parts = parseEnvelope(padded.subarray(4, 4 + blob.length));
    assert.deepEqual(parts.ciphertext, ciphertext);
  });

  it('accepts an empty ciphertext (empty data)', () => {
    const blob = serializeEnvelope(envelopeHeader(wrappedKey, iv), tag, Buffer.alloc(0));
    assert.equal(parseEnvelope(blob).ciphertext.length, 0);
  });

  it('rejects every truncation that cuts into the fixed parts, naming the part', () => {
    const blob = sample();
    const end = 7 + wrappedKey.length + ivLength + tagLength;
    const expectations: Array<[number, RegExp]> = [
      [0, /the magic/],
      [3, /the magic/],
      [4, /the format version/],
      [5, /the wrapped key length/],
      [6, /the wrapped key length/],
      [7, /the wrapped data key/],
      [7 + wrappedKey.length - 1, /the wrapped data key/],
      [7 + wrappedKey.length, /the IV/],
      [7 + wrappedKey.length + ivLength - 1, /the IV/],
      [7 + wrappedKey.length + ivLength, /the tag/],
      [end - 1, /the tag/],
    ];
    for (const [length, part] of expectations) {
      rejectsWith(blob.subarray(0, length), 'ENVELOPE_TRUNCATED', part);
    }
    for (let length = 0; length < end; length += 1) {
      assert.throws(() => parseEnvelope(blob.subarray(0, length)), BrokerError);
    }
  });

  it('rejects a wrong magic', () => {
    const blob = sample();
    blob[0] = 0x00;
    rejectsWith(blob, 'ENVELOPE_BAD_MAGIC', /bad magic 0x00534245/);
    rejectsWith(Buffer.from('{"json": true}'), 'ENVELOPE_BAD_MAGIC', /not an hsm-broker envelope/);
  });

  it('rejects an unknown format version', () => {
    const blob = sample();
    blob[4] = 2;
    rejectsWith(blob, 'ENVELOPE_UNSUPPORTED_VERSION', /version 2 \(supported: 1\)/);
    blob[4] = 0;
    rejectsWith(blob, 'ENVELOPE_UNSUPPORTED_VERSION', /version 0/);
  });

  it('rejects a zero-length wrapped key', () => {
    const blob = Buffer.concat([envelopeMagic, Buffer.from([1, 0, 0]), iv, tag]);
    rejectsWith(blob, 'ENVELOPE_MALFORMED', /length is 0/);
  });

  it('rejects a wrapped key length that runs past the end', () => {
    const blob = sample();
    blob.writeUInt16BE(0xffff, 5);
    rejectsWith(blob, 'ENVELOPE_TRUNCATED', /the wrapped data key needs at least 65542/);
  });

  it('refuses to build a header it could not parse back', () => {
    assert.throws(() => envelopeHeader(Buffer.alloc(0), iv), /wrapped data key of 0 bytes/);
    assert.throws(() => envelopeHeader(Buffer.alloc(0x10000), iv), /does not fit/);
    assert.throws(() => envelopeHeader(wrappedKey, Buffer.alloc(16)), /IV of 16 bytes/);
    assert.throws(() => serializeEnvelope(envelopeHeader(wrappedKey, iv), Buffer.alloc(12), ciphertext), /tag of 12/);
  });
});
