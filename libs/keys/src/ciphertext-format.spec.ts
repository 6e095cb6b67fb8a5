import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { additionalData, encodeContext, encodeHeader, ivLength, maxCiphertextBytes, maxPlaintextBytes, parseCiphertext, tagLength } from './ciphertext-format.js';

describe('ciphertext format', () => {
  it('round-trips the header and splits IV and sealed data', () => {
    const header = encodeHeader('app/key', 7);
    const blob = Buffer.concat([header, Buffer.alloc(12, 1), Buffer.alloc(20, 2)]);
    const parsed = parseCiphertext(blob);
    assert.equal(parsed.keyId, 'app/key');
    assert.equal(parsed.keyVersion, 7);
    assert.deepEqual(parsed.header, header);
    assert.deepEqual(parsed.iv, Buffer.alloc(12, 1));
    assert.equal(parsed.sealed.length, 20);
  });

  it('refuses foreign, future and truncated blobs with INVALID_ARGUMENT naming ciphertext', () => {
    const good = Buffer.concat([encodeHeader('k', 1), Buffer.alloc(28)]);
    for (const bad of [Buffer.alloc(0), Buffer.from('XX'), Buffer.concat([Buffer.from('HB\u0002'), good.subarray(3)]), good.subarray(0, good.length - 1)]) {
      assert.throws(() => parseCiphertext(bad), (error: unknown) => error instanceof BrokerError && error.reason === 'INVALID_CIPHERTEXT' && /^ciphertext: /.test(error.message));
    }
  });

  it('bounds a ciphertext at what the longest key id and the largest plaintext make', () => {
    const largest = Buffer.concat([encodeHeader('k'.repeat(128), 1), Buffer.alloc(ivLength), Buffer.alloc(maxPlaintextBytes + tagLength)]);
    assert.equal(largest.length, maxCiphertextBytes);
    assert.equal(parseCiphertext(largest).keyId.length, 128);
    const oversize = Buffer.concat([encodeHeader('k', 1), Buffer.alloc(maxCiphertextBytes)]);
    assert.throws(
      () => parseCiphertext(oversize),
      (error: unknown) => error instanceof BrokerError && error.reason === 'CIPHERTEXT_TOO_LARGE' && error.message.startsWith('ciphertext: ') && error.details['field'] === 'ciphertext',
    );
  });

  it('encodes contexts canonically and unambiguously', () => {
    assert.deepEqual(encodeContext({ b: '2', a: '1' }), encodeContext({ a: '1', b: '2' }));
    assert.notDeepEqual(encodeContext({ ab: 'c' }), encodeContext({ a: 'bc' }));
    assert.deepEqual(encodeContext({}), Buffer.alloc(0));
    assert.notDeepEqual(additionalData(encodeHeader('k', 1), {}), additionalData(encodeHeader('k', 2), {}));
  });
});
