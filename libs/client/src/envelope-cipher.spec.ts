import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { openEnvelope, sealEnvelope } from './envelope-cipher.js';
import { parseEnvelope } from './envelope-format.js';

// The wrapped key is opaque to the envelope code; any bytes stand in for the
// broker's ciphertext_blob here.
const wrappedKey = randomBytes(90);
const context = { tenant: 'acme', purpose: 'invoices' };
const data = Buffer.from('the quick brown fox jumps over the lazy dog');

function open(blob: Uint8Array, dataKey: Buffer, ctx: Record<string, string> = context): Buffer {
  return openEnvelope(parseEnvelope(blob), dataKey, ctx);
}

function isAuthenticationFailure(error: unknown): boolean {
  return (
    error instanceof BrokerError &&
    error.code === Code.INVALID_ARGUMENT &&
    error.reason === 'ENVELOPE_AUTHENTICATION_FAILED'
  );
}

describe('sealEnvelope / openEnvelope', () => {
  it('round-trips data with a real AES-256 key', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, data, context);
    assert.deepEqual(open(blob, dataKey), data);
    assert.deepEqual(parseEnvelope(blob).wrappedKey, wrappedKey);
    assert.equal(blob.includes(data), false, 'the data must not appear in the clear');
  });

  it('round-trips empty data and an empty context', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, Buffer.alloc(0), {});
    assert.equal(open(blob, dataKey, {}).length, 0);
  });

  it('accepts the context in any insertion order', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, data, { a: '1', b: '2' });
    assert.deepEqual(open(blob, dataKey, { b: '2', a: '1' }), data);
  });

  it('uses a fresh IV for every envelope', () => {
    const dataKey = randomBytes(32);
    const first = parseEnvelope(sealEnvelope(dataKey, wrappedKey, data, context));
    const second = parseEnvelope(sealEnvelope(dataKey, wrappedKey, data, context));
    assert.notDeepEqual(first.iv, second.iv);
    assert.notDeepEqual(first.ciphertext, second.ciphertext);
  });

  it('fails when any single byte of the envelope is altered', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, data, context);
    for (let index = 0; index < blob.length; index += 1) {
      const altered = Buffer.from(blob);
      altered[index] = (altered[index] ?? 0) ^ 0x01;
      // Framing bytes fail the parse, everything else fails authentication.
      assert.throws(
        () => open(altered, dataKey),
        (error: unknown) => error instanceof BrokerError && error.code === Code.INVALID_ARGUMENT,
        `byte ${String(index)} was altered undetected`,
      );
    }
  });

  it('fails when the wrapped key is swapped for another of the same length', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, data, context);
    const swapped = Buffer.from(blob);
    randomBytes(wrappedKey.length).copy(swapped, 7);
    assert.throws(() => open(swapped, dataKey), isAuthenticationFailure);
  });

  it('fails when bytes are appended or the ciphertext is cut short', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, data, context);
    assert.throws(() => open(Buffer.concat([blob, Buffer.from([0])]), dataKey), isAuthenticationFailure);
    assert.throws(() => open(blob.subarray(0, blob.length - 1), dataKey), isAuthenticationFailure);
  });

  it('fails with a different, missing or extra context entry', () => {
    const dataKey = randomBytes(32);
    const blob = sealEnvelope(dataKey, wrappedKey, data, context);
    assert.throws(() => open(blob, dataKey, { ...context, tenant: 'other' }), isAuthenticationFailure);
    assert.throws(() => open(blob, dataKey, { tenant: 'acme' }), isAuthenticationFailure);
    assert.throws(() => open(blob, dataKey, { ...context, extra: '' }), isAuthenticationFailure);
    assert.throws(() => open(blob, dataKey, {}), isAuthenticationFailure);
  });

  it('fails with another data key', () => {
    const blob = sealEnvelope(randomBytes(32), wrappedKey, data, context);
    assert.throws(() => open(blob, randomBytes(32)), isAuthenticationFailure);
  });

  it('rejects a data key that is not 32 bytes as an internal fault', () => {
    assert.throws(
      () => sealEnvelope(randomBytes(16), wrappedKey, data, context),
      (error: unknown) => error instanceof BrokerError && error.code === Code.INTERNAL,
    );
    const blob = sealEnvelope(randomBytes(32), wrappedKey, data, context);
    assert.throws(() => open(blob, randomBytes(31)), /data key of 31 bytes/);
  });
});
