import assert from 'node:assert/strict';
import { createHmac, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FaultKind, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

// Worker processes with several PKCS#11 sessions each, on real SoftHSM
// tokens: calls run at once on a process's thread pool, and the properties
// of one call per process (answers to their callers, hang detection,
// recovery) still hold.

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('several PKCS#11 sessions per worker process', { timeout: 600_000 }, () => {
  let t: TestBroker;

  before(async () => {
    t = await startTestBroker({
      env: { HSMB_LOCAL_FLEET: '2x1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_SESSIONS_PER_WORKER: '4', HSMB_FAULT_INJECTION: '1' },
      config: { timeouts: { callMs: 1500 }, routing: { openMs: 300, maxOpenMs: 2000, healthIntervalMs: 100, probeTimeoutMs: 1000, slowStartMs: 0 } },
    });
    await t.clients.keys.createKey({ keyId: 'sess/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'sess/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'sess/mac', keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    await t.dispose();
  });

  it('gives every appliance its sessions', () => {
    for (const appliance of t.broker.fleet.appliances) assert.equal(appliance.config.sessionsPerWorker, 4, appliance.id);
  });

  it('signs 200 messages at once, each signature its own message’s, verified by node:crypto', async () => {
    const spki = (await t.clients.crypto.getPublicKey({ keyId: 'sess/ec', keyVersion: 0 })).publicKeyDer;
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const messages = Array.from({ length: 200 }, (_, i) => Buffer.from(`message ${String(i)}`));
    const signed = await Promise.all(messages.map((message) => t.clients.crypto.sign({ keyId: 'sess/ec', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 })));
    signed.forEach(({ signature }, i) => assert.ok(cryptoVerify('sha256', messages[i], key, signature), `signature ${String(i)}`));
    assert.ok(!cryptoVerify('sha256', messages[1], key, signed[0]?.signature ?? Buffer.alloc(0)), 'a signature does not fit another message');
  });

  it('encrypts and decrypts 200 payloads at once, and rejects a tampered ciphertext', async () => {
    const payloads = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1024, i));
    const sealed = await Promise.all(payloads.map((plaintext) => t.clients.crypto.encrypt({ keyId: 'sess/aes', plaintext, encryptionContext: { n: '1' } })));
    const opened = await Promise.all(sealed.map(({ ciphertext }) => t.clients.crypto.decrypt({ ciphertext, encryptionContext: { n: '1' } })));
    opened.forEach(({ plaintext }, i) => assert.deepEqual(plaintext, payloads[i]));
    const tampered = Buffer.from(sealed[0]?.ciphertext ?? Buffer.alloc(0));
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
    const refused = await statusOf(t.clients.crypto.decrypt({ ciphertext: tampered, encryptionContext: { n: '1' } }));
    assert.equal(refused.code, status.INVALID_ARGUMENT, refused.message);
  });

  it('computes MACs at once that agree with each other and verify', async () => {
    const messages = Array.from({ length: 100 }, (_, i) => Buffer.from(`mac ${String(i % 10)}`));
    const macs = await Promise.all(messages.map((message) => t.clients.crypto.generateMac({ keyId: 'sess/mac', message, macAlgorithm: MacAlgorithm.HMAC_SHA_256 })));
    macs.forEach(({ mac }, i) => assert.deepEqual(mac, macs[i % 10]?.mac, `same message, same MAC (${String(i)})`));
    assert.notDeepEqual(macs[0]?.mac, macs[1]?.mac);
    const checked = await t.clients.crypto.verifyMac({ keyId: 'sess/mac', keyVersion: 0, message: messages[3], mac: macs[3]?.mac ?? Buffer.alloc(0), macAlgorithm: MacAlgorithm.HMAC_SHA_256 });
    assert.equal(checked.macValid, true);
    // The HSM's key never leaves it, so the MAC is checked against itself, not node:crypto; a wrong key's MAC is refused.
    const foreign = createHmac('sha256', Buffer.alloc(32, 1)).update(messages[3] as Buffer).digest();
    const wrong = await t.clients.crypto.verifyMac({ keyId: 'sess/mac', keyVersion: 0, message: messages[3], mac: foreign, macAlgorithm: MacAlgorithm.HMAC_SHA_256 });
    assert.equal(wrong.macValid, false);
  });

  it('replaces a worker whose calls hang on its sessions, and every sign still succeeds elsewhere', async () => {
    const victim = t.broker.fleet.appliance('hsm-a1');
    const [pid] = victim.workerPids;
    assert.ok(pid);
    const restartsBefore = victim.stats.workerRestartsTotal;
    await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.HANG, probability: 0, latencyMs: 0, durationMs: 0 });
    try {
      const messages = Array.from({ length: 40 }, (_, i) => Buffer.from(`h${String(i)}`));
      const signs = await Promise.all(
        messages.map((message) => t.clients.crypto.sign({ keyId: 'sess/ec', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 })),
      );
      const key = createPublicKey({ key: (await t.clients.crypto.getPublicKey({ keyId: 'sess/ec', keyVersion: 0 })).publicKeyDer, format: 'der', type: 'spki' });
      signs.forEach(({ signature }, i) => assert.ok(cryptoVerify('sha256', messages[i], key, signature), `signature ${String(i)}`));
      await until(() => victim.stats.workerRestartsTotal > restartsBefore, 15_000, 'the hung worker to be replaced');
      assert.ok(!victim.workerPids.includes(pid), 'the old process is gone');
    } finally {
      await t.clients.fleet.clearFaults({ applianceId: '' });
    }
  });
});
