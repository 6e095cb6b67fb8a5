import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { digestOf, type CallRecord, type HistoryRecord } from '../load/call-history.js';
import { checkHistory, type HistoryReadBack, type KeyReadBack } from './history-checker.js';

// Hand-made histories against an in-memory broker: each kind of violation
// must be found, and a clean history must pass.

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

function sign(message: Buffer): Buffer {
  return createSign('sha256').update(message).sign({ key: privateKey, dsaEncoding: 'der' });
}

/** Ciphertexts are `sealed:<plaintext>` in this fake. */
function fakeBroker(keys: Record<string, KeyReadBack>): HistoryReadBack {
  return {
    describeKey: (keyId) => Promise.resolve(keys[keyId]),
    decrypt: (ciphertext) => {
      const text = Buffer.from(ciphertext).toString();
      return text.startsWith('sealed:') ? Promise.resolve(Buffer.from(text.slice(7))) : Promise.reject(new Error('INVALID_CIPHERTEXT'));
    },
    publicKeyPem: () => Promise.resolve(publicPem),
  };
}

let seq = 0;
function call(fields: Partial<CallRecord> & Pick<CallRecord, 'op'>): CallRecord {
  seq += 1;
  return { type: 'call', seq, process: 0, keyId: 'k', inputDigest: 'x', code: 'OK', startMs: 1000, endMs: 1010, deadlineMs: 2000, ...fields };
}

function clean(): HistoryRecord[] {
  const message = Buffer.from('load message');
  return [
    call({ op: 'CreateKey', keyId: 'new-1', keyVersion: 1 }),
    call({ op: 'RotateKey', keyId: 'aes', keyVersion: 2 }),
    call({ op: 'Encrypt', keyId: 'aes', ciphertext: Buffer.from('sealed:hello').toString('base64'), plaintextDigest: digestOf(Buffer.from('hello')) }),
    call({ op: 'Sign', keyId: 'ec', keyVersion: 1, algorithm: 'ECDSA_SHA_256', message: message.toString('base64'), signature: sign(message).toString('base64') }),
    call({ op: 'Decrypt', keyId: 'aes', correct: true }),
    call({ op: 'Encrypt', keyId: 'aes', code: 'UNAVAILABLE' }),
    call({ op: 'Sign', keyId: 'ec', code: 'DEADLINE_EXCEEDED', startMs: 0, endMs: 2050 }),
    { type: 'fault', startMs: 1000, endMs: 1001, action: { kind: 'kill', appliance: 'hsm-a1' }, description: 'kill hsm-a1' },
  ];
}

const keys: Record<string, KeyReadBack> = {
  'new-1': { versions: new Map([[1, 2]]) },
  aes: { versions: new Map([[1, 2], [2, 3]]) },
};

describe('history checker', () => {
  it('passes a history whose writes all read back', async () => {
    const report = await checkHistory(clean(), fakeBroker(keys));
    assert.deepEqual(report.violations, []);
    assert.equal(report.calls, 7);
    assert.deepEqual(report.checked, { keys: 2, rotations: 1, ciphertexts: 1, signatures: 1 });
    assert.equal(report.failedIdempotent, 2);
    assert.deepEqual(report.results['Encrypt'], { OK: 1, UNAVAILABLE: 1 });
  });

  it('finds an acknowledged CreateKey whose key is gone', async () => {
    const report = await checkHistory(clean(), fakeBroker({ aes: keys['aes'] }));
    assert.deepEqual(report.violations.map((v) => [v.kind, v.op, v.keyId]), [['lost-write', 'CreateKey', 'new-1']]);
  });

  it('finds an acknowledged rotation whose version is gone, and a version below the replica quorum', async () => {
    const report = await checkHistory(clean(), fakeBroker({ 'new-1': { versions: new Map([[1, 1]]) }, aes: { versions: new Map([[1, 2]]) } }));
    assert.deepEqual(report.violations.map((v) => [v.kind, v.op]).sort(), [['lost-write', 'RotateKey'], ['under-replicated', 'CreateKey']]);
  });

  it('finds a ciphertext that no longer decrypts, and one that decrypts to something else', async () => {
    const history = [
      ...clean(),
      call({ op: 'Encrypt', ciphertext: Buffer.from('garbage').toString('base64'), plaintextDigest: digestOf(Buffer.from('a')) }),
      call({ op: 'GenerateDataKey', ciphertext: Buffer.from('sealed:other').toString('base64'), plaintextDigest: digestOf(Buffer.from('b')) }),
    ];
    const report = await checkHistory(history, fakeBroker(keys));
    assert.deepEqual(report.violations.map((v) => [v.kind, v.op]), [['unreadable-ciphertext', 'Encrypt'], ['unreadable-ciphertext', 'GenerateDataKey']]);
  });

  it('finds a signature that node:crypto does not verify', async () => {
    const message = Buffer.from('signed');
    const signature = sign(message);
    signature[signature.length - 1] = (signature[signature.length - 1] ?? 0) ^ 1;
    const history = [...clean(), call({ op: 'Sign', keyId: 'ec', keyVersion: 1, algorithm: 'ECDSA_SHA_256', message: message.toString('base64'), signature: signature.toString('base64') })];
    const report = await checkHistory(history, fakeBroker(keys));
    assert.deepEqual(report.violations.map((v) => v.kind), ['bad-signature']);
  });

  it('finds a code outside the documented set, a deadline overrun and a wrong answer', async () => {
    const history = [
      ...clean(),
      call({ op: 'Decrypt', code: 'INTERNAL' }),
      call({ op: 'Encrypt', code: 'DEADLINE_EXCEEDED', startMs: 0, endMs: 2101 }),
      call({ op: 'Verify', correct: false }),
    ];
    const report = await checkHistory(history, fakeBroker(keys));
    assert.deepEqual(report.violations.map((v) => [v.kind, v.op]), [['unexpected-code', 'Decrypt'], ['deadline-overrun', 'Encrypt'], ['wrong-answer', 'Verify']]);
  });

  it("discounts the time the caller's own event loop was stalled from a deadline overrun", async () => {
    const history = [
      call({ op: 'Sign', code: 'DEADLINE_EXCEEDED', startMs: 0, endMs: 2300, clientLagMs: 250 }),
      call({ op: 'Sign', code: 'DEADLINE_EXCEEDED', startMs: 0, endMs: 2300, clientLagMs: 150 }),
    ];
    const report = await checkHistory(history, fakeBroker(keys));
    assert.deepEqual(report.violations.map((v) => [v.kind, v.seq]), [['deadline-overrun', history[1]?.seq]]);
    assert.equal(report.maxClientLagMs, 250);
  });

  it('takes the allowed codes and the deadline slack as options', async () => {
    const history = [call({ op: 'Encrypt', code: 'UNAVAILABLE', startMs: 0, endMs: 2040 })];
    const report = await checkHistory(history, fakeBroker(keys), { allowedCodes: [], deadlineSlackMs: 10 });
    assert.deepEqual(report.violations.map((v) => v.kind), ['unexpected-code', 'deadline-overrun']);
  });
});
