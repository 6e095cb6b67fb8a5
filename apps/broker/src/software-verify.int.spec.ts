import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { AuditEntry } from '@hsm-broker/audit';
import { KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const day = 86_400_000;

describe('Verify and GetPublicKey in software, and their cache', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let now = Date.now();
  const verifyRecords: Extract<AuditEntry, { type: 'call' }>[] = [];

  before(async () => {
    t = await startTestBroker({ clock: () => now });
    t.broker.audit.subscribe(({ entry }) => {
      if (entry.type === 'call' && (entry.operation === 'Verify' || entry.operation === 'GetPublicKey')) verifyRecords.push(entry);
    });
  });

  after(async () => {
    await t.dispose();
  });

  const create = (keyId: string, keySpec: KeySpec) => t.clients.keys.createKey({ keyId, keySpec, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
  const sign = (keyId: string, message: Buffer, signingAlgorithm: SigningAlgorithm, messageType = MessageType.RAW) => t.clients.crypto.sign({ keyId, message, messageType, signingAlgorithm });
  const verify = (keyId: string, message: Buffer, signature: Buffer, signingAlgorithm: SigningAlgorithm, messageType = MessageType.RAW, keyVersion = 0) =>
    t.clients.crypto.verify({ keyId, keyVersion, message, messageType, signature, signingAlgorithm });

  it('agrees with node:crypto on HSM signatures, RAW and DIGEST, rejects tampering, and asks no appliance', async () => {
    const cases = [
      { keyId: 'sv/ec', spec: KeySpec.ECC_NIST_P256, algorithm: SigningAlgorithm.ECDSA_SHA_256, hash: 'sha256' },
      { keyId: 'sv/ec384', spec: KeySpec.ECC_NIST_P384, algorithm: SigningAlgorithm.ECDSA_SHA_384, hash: 'sha384' },
      { keyId: 'sv/rsa-pss', spec: KeySpec.RSA_2048, algorithm: SigningAlgorithm.RSASSA_PSS_SHA_384, hash: 'sha384' },
      { keyId: 'sv/rsa-pkcs1', spec: KeySpec.RSA_3072, algorithm: SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256, hash: 'sha256' },
    ] as const;
    for (const { keyId, spec, algorithm, hash } of cases) {
      await create(keyId, spec);
      const spki = (await t.clients.crypto.getPublicKey({ keyId, keyVersion: 0 })).publicKeyDer;
      const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
      const rsaOptions = algorithm === SigningAlgorithm.RSASSA_PSS_SHA_384 ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 } : { padding: constants.RSA_PKCS1_PADDING };
      const message = Buffer.from(`signed by ${keyId}`);
      const digest = createHash(hash).update(message).digest();
      const signed = await sign(keyId, digest, algorithm, MessageType.DIGEST);
      assert.ok(cryptoVerify(hash, message, spec === KeySpec.ECC_NIST_P256 || spec === KeySpec.ECC_NIST_P384 ? key : { key, ...rsaOptions }, signed.signature), `${keyId}: node:crypto accepts the HSM signature`);
      assert.equal((await verify(keyId, message, signed.signature, algorithm)).signatureValid, true, `${keyId} RAW`);
      assert.equal((await verify(keyId, digest, signed.signature, algorithm, MessageType.DIGEST)).signatureValid, true, `${keyId} DIGEST`);
      const tampered = Buffer.from(signed.signature);
      tampered[Math.floor(tampered.length / 2)] = (tampered[Math.floor(tampered.length / 2)] ?? 0) ^ 0x10;
      assert.equal((await verify(keyId, message, tampered, algorithm)).signatureValid, false, `${keyId} tampered RAW`);
      assert.equal((await verify(keyId, digest, tampered, algorithm, MessageType.DIGEST)).signatureValid, false, `${keyId} tampered DIGEST`);
      assert.equal((await verify(keyId, Buffer.from('another message'), signed.signature, algorithm)).signatureValid, false, `${keyId} other message`);
    }
    // A signature made outside the broker with another key is invalid, not an error.
    const outsider = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal((await verify('sv/ec', Buffer.from('m'), cryptoSign('sha256', Buffer.from('m'), outsider.privateKey), SigningAlgorithm.ECDSA_SHA_256)).signatureValid, false);
    for (let attempt = 0; attempt < 100 && verifyRecords.length < 20; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(verifyRecords.length >= 20);
    assert.deepEqual(verifyRecords.flatMap((entry) => entry.appliances), [], 'no appliance served a Verify or GetPublicKey');
  });

  it('keeps working with every appliance drained, since it needs none', async () => {
    await create('sv/alone', KeySpec.ECC_NIST_P256);
    const signed = await sign('sv/alone', Buffer.from('m'), SigningAlgorithm.ECDSA_SHA_256);
    for (const appliance of t.broker.fleet.appliances) appliance.setDrained(true);
    try {
      assert.equal((await verify('sv/alone', Buffer.from('m'), signed.signature, SigningAlgorithm.ECDSA_SHA_256)).signatureValid, true);
      assert.ok((await t.clients.crypto.getPublicKey({ keyId: 'sv/alone', keyVersion: 0 })).publicKeyDer.length > 0);
    } finally {
      for (const appliance of t.broker.fleet.appliances) appliance.setDrained(false);
    }
  });

  it('sees a rotation at once: version 0 is the new primary, version 1 still verifies', async () => {
    await create('sv/rot', KeySpec.ECC_NIST_P256);
    const old = await sign('sv/rot', Buffer.from('m'), SigningAlgorithm.ECDSA_SHA_256);
    assert.equal((await verify('sv/rot', Buffer.from('m'), old.signature, SigningAlgorithm.ECDSA_SHA_256)).keyVersion, 1);
    await t.clients.keys.rotateKey({ keyId: 'sv/rot' });
    const fresh = await sign('sv/rot', Buffer.from('m'), SigningAlgorithm.ECDSA_SHA_256);
    assert.equal(fresh.keyVersion, 2);
    const current = await verify('sv/rot', Buffer.from('m'), fresh.signature, SigningAlgorithm.ECDSA_SHA_256);
    assert.deepEqual([current.keyVersion, current.signatureValid], [2, true]);
    const stale = await verify('sv/rot', Buffer.from('m'), old.signature, SigningAlgorithm.ECDSA_SHA_256);
    assert.deepEqual([stale.keyVersion, stale.signatureValid], [2, false]);
    assert.equal((await verify('sv/rot', Buffer.from('m'), old.signature, SigningAlgorithm.ECDSA_SHA_256, MessageType.RAW, 1)).signatureValid, true);
    assert.equal((await t.clients.crypto.getPublicKey({ keyId: 'sv/rot', keyVersion: 0 })).keyVersion, 2);
  });

  it('keeps the documented errors through disable, enable, scheduled deletion and destruction', async () => {
    await create('sv/life', KeySpec.ECC_NIST_P256);
    const signed = await sign('sv/life', Buffer.from('m'), SigningAlgorithm.ECDSA_SHA_256);
    const check = () => verify('sv/life', Buffer.from('m'), signed.signature, SigningAlgorithm.ECDSA_SHA_256);
    assert.equal((await check()).signatureValid, true, 'cached while enabled');
    await t.clients.keys.disableKey({ keyId: 'sv/life' });
    const disabled = await statusOf(check());
    assert.equal(disabled.code, status.FAILED_PRECONDITION);
    assert.match(disabled.message, /disabled/);
    assert.equal((await statusOf(t.clients.crypto.getPublicKey({ keyId: 'sv/life', keyVersion: 0 }))).code, status.FAILED_PRECONDITION);
    await t.clients.keys.enableKey({ keyId: 'sv/life' });
    assert.equal((await check()).signatureValid, true);
    await t.clients.keys.scheduleKeyDeletion({ keyId: 'sv/life', pendingWindowDays: 7 });
    const pending = await statusOf(check());
    assert.equal(pending.code, status.FAILED_PRECONDITION);
    assert.match(pending.message, /pending deletion/);
    now += 8 * day;
    const report = await t.broker.sweepDeletions();
    assert.ok(report.done.includes('sv/life'), report.failures.join('; '));
    const gone = await statusOf(check());
    assert.equal(gone.code, status.NOT_FOUND);
    assert.match(gone.message, /key_id/);
    assert.equal((await statusOf(t.clients.crypto.getPublicKey({ keyId: 'sv/life', keyVersion: 0 }))).code, status.NOT_FOUND);
    assert.equal((await statusOf(verify('sv/never', Buffer.from('m'), signed.signature, SigningAlgorithm.ECDSA_SHA_256))).code, status.NOT_FOUND);
  });
});
