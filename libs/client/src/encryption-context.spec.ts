import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { encodeEncryptionContext } from './encryption-context.js';

describe('encodeEncryptionContext', () => {
  it('encodes an empty map as an empty buffer', () => {
    assert.equal(encodeEncryptionContext({}).length, 0);
  });

  it('writes u16 key length, key, u32 value length, value, sorted by key', () => {
    const encoded = encodeEncryptionContext({ tenant: 'acme', app: 'x' });
    const expected = Buffer.concat([
      Buffer.from([0x00, 0x03]),
      Buffer.from('app'),
      Buffer.from([0x00, 0x00, 0x00, 0x01]),
      Buffer.from('x'),
      Buffer.from([0x00, 0x06]),
      Buffer.from('tenant'),
      Buffer.from([0x00, 0x00, 0x00, 0x04]),
      Buffer.from('acme'),
    ]);
    assert.equal(encoded.toString('hex'), expected.toString('hex'));
  });

  it('does not depend on insertion order', () => {
    const a = encodeEncryptionContext({ b: '2', a: '1', c: '3' });
    const b = encodeEncryptionContext({ c: '3', a: '1', b: '2' });
    assert.deepEqual(a, b);
  });

  it('sorts by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FFFF is EF BF BF in UTF-8 and sorts before U+1F600 (F0 ...), although
    // its single UTF-16 unit sorts after the surrogate pair D83D DE00.
    const encoded = encodeEncryptionContext({ '\u{1F600}': 'emoji', '\uFFFF': 'last-bmp' });
    assert.equal(encoded.readUInt16BE(0), 3);
    assert.equal(encoded.subarray(2, 5).toString('hex'), 'efbfbf');
  });

  it('keeps values with separators apart from keys with separators', () => {
    assert.notDeepEqual(
      encodeEncryptionContext({ a: 'b=c' }),
      encodeEncryptionContext({ 'a=b': 'c' }),
    );
    assert.notDeepEqual(encodeEncryptionContext({ ab: '' }), encodeEncryptionContext({ a: 'b' }));
  });

  it('counts lengths in UTF-8 bytes', () => {
    const encoded = encodeEncryptionContext({ 'ä': 'ü€' });
    assert.equal(encoded.readUInt16BE(0), 2);
    assert.equal(encoded.readUInt32BE(4), 5);
    assert.equal(encoded.length, 2 + 2 + 4 + 5);
  });

  it('rejects keys longer than 65535 bytes', () => {
    assert.throws(
      () => encodeEncryptionContext({ ['k'.repeat(0x10000)]: 'v' }),
      (error: unknown) => error instanceof BrokerError && error.code === Code.INVALID_ARGUMENT,
    );
  });

  it('rejects lone surrogates, which have no UTF-8 form', () => {
    assert.throws(
      () => encodeEncryptionContext({ a: '\uD800' }),
      (error: unknown) =>
        error instanceof BrokerError &&
        error.code === Code.INVALID_ARGUMENT &&
        /lone surrogate/.test(error.message),
    );
  });

  it('rejects values that are not strings', () => {
    const context = { n: 1 } as unknown as Record<string, string>;
    assert.throws(() => encodeEncryptionContext(context), /not a string/);
  });
});
