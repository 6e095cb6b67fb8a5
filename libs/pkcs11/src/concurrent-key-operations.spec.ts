import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { KeyOperations } from './key-operations.js';
import { Pkcs11Token } from './pkcs11-token.js';
import { softhsmModulePath, useTemporarySoftHsm } from './softhsm-test-token.js';
import { initializeToken } from './token-initialization.js';

// Calls on sessions of their own (the worker's several sessions per
// process): real SoftHSM, real pkcs11js thread-pool calls, every signature
// checked by node:crypto.

describe('KeyOperations, concurrently on SoftHSM', () => {
  const softhsm = useTemporarySoftHsm();
  const pins = { so: randomBytes(8).toString('hex'), user: randomBytes(8).toString('hex') };
  let token: Pkcs11Token;
  let ops: KeyOperations;

  before(() => {
    initializeToken({ modulePath: softhsmModulePath, label: 'concurrent', soPin: pins.so, userPin: pins.user });
    token = Pkcs11Token.open({ modulePath: softhsmModulePath, selector: { token: 'concurrent' }, role: 'user', pin: pins.user });
    ops = new KeyOperations(token);
  });

  after(() => {
    token.close();
    softhsm[Symbol.dispose]();
  });

  it('gives each concurrent call a session of its own, logged in through the main one', async () => {
    const entered: bigint[] = [];
    let release: () => void = () => undefined;
    const allIn = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls = Array.from({ length: 4 }, () =>
      token.runConcurrently(async (session, module) => {
        entered.push(session.readBigUInt64LE(0));
        if (entered.length === 4) release();
        await allIn;
        // A private-object search works on every pooled session: the login is per application.
        module.C_FindObjectsInit(session, []);
        module.C_FindObjectsFinal(session);
        return session.readBigUInt64LE(0);
      }),
    );
    const sessions = await Promise.all(calls);
    assert.equal(new Set(sessions).size, 4, 'four calls in flight held four distinct sessions');
  });

  for (const [spec, scheme, hash] of [
    ['ECC_NIST_P256', 'ecdsa', 'sha256'],
    ['RSA_2048', 'rsa-pss', 'sha256'],
    ['RSA_2048', 'rsa-pkcs1', 'sha384'],
  ] as const) {
    it(`signs ${spec} ${scheme} 48 at a time, every signature verified by node:crypto`, async () => {
      const label = `c/${spec}-${scheme}@1`;
      const { publicKeySpki } = ops.generateKey(spec, label);
      assert.ok(publicKeySpki);
      const key = createPublicKey({ key: publicKeySpki, format: 'der', type: 'spki' });
      const messages = Array.from({ length: 48 }, (_, i) => Buffer.from(`message ${String(i)}`));
      const signatures = await Promise.all(
        messages.map((message) => ops.signConcurrently(label, scheme, hash, createHash(hash).update(message).digest())),
      );
      const padding = scheme === 'rsa-pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      signatures.forEach((signature, i) => {
        const message = messages[i] as Buffer;
        const ok = scheme === 'ecdsa' ? cryptoVerify(hash, message, key, signature) : cryptoVerify(hash, message, { key, padding, saltLength: 32 }, signature);
        assert.equal(ok, true, `signature ${String(i)} verifies`);
      });
      const digest = createHash(hash).update(messages[0] as Buffer).digest();
      assert.equal(await ops.verifyConcurrently(spec, label, scheme, hash, digest, signatures[0]), true);
      const wrong = Buffer.from(signatures[0]);
      wrong[wrong.length - 1] = (wrong[wrong.length - 1] ?? 0) ^ 1;
      assert.equal(await ops.verifyConcurrently(spec, label, scheme, hash, digest, wrong), false);
      assert.equal(await ops.verifyConcurrently(spec, label, scheme, hash, digest, Buffer.from([0x30, 0x02])), false);
    });
  }

  it('encrypts and decrypts AES-GCM concurrently and rejects tampered ciphertext as INVALID_ARGUMENT', async () => {
    ops.generateKey('AES_256', 'c/aes@1');
    const items = Array.from({ length: 32 }, (_, i) => ({ iv: randomBytes(12), aad: Buffer.from(`aad ${String(i)}`), plaintext: randomBytes(1024) }));
    const ciphertexts = await Promise.all(items.map(({ iv, aad, plaintext }) => ops.encryptConcurrently('c/aes@1', iv, aad, plaintext)));
    const plaintexts = await Promise.all(items.map(({ iv, aad }, i) => ops.decryptConcurrently('c/aes@1', iv, aad, ciphertexts[i])));
    plaintexts.forEach((plaintext, i) => assert.deepEqual(plaintext, items[i]?.plaintext));
    // The synchronous path reads what the concurrent one wrote.
    const first = items[0];
    assert.deepEqual(ops.decrypt('c/aes@1', first.iv, first.aad, ciphertexts[0]), first.plaintext);
    const tampered = Buffer.from(ciphertexts[0]);
    tampered[5] = (tampered[5] ?? 0) ^ 1;
    const outcomes = await Promise.allSettled([
      ops.decryptConcurrently('c/aes@1', first.iv, first.aad, tampered),
      ops.decryptConcurrently('c/aes@1', first.iv, first.aad, ciphertexts[0]),
    ]);
    assert.equal(outcomes[0].status, 'rejected');
    const rejection = (outcomes[0]).reason as unknown;
    assert.ok(rejection instanceof BrokerError);
    assert.equal(rejection.code, Code.INVALID_ARGUMENT);
    assert.equal(outcomes[1].status, 'fulfilled', 'a failed tag check leaves the other sessions alone');
  });

  it('computes and checks HMACs concurrently', async () => {
    ops.generateKey('HMAC_256', 'c/mac@1');
    const macs = await Promise.all(Array.from({ length: 16 }, (_, i) => ops.generateMacConcurrently('c/mac@1', 'sha256', Buffer.from(String(i)))));
    assert.deepEqual(macs[3], ops.generateMac('c/mac@1', 'sha256', Buffer.from('3')));
    assert.equal(await ops.verifyMacConcurrently('c/mac@1', 'sha256', Buffer.from('3'), macs[3]), true);
    assert.equal(await ops.verifyMacConcurrently('c/mac@1', 'sha256', Buffer.from('4'), macs[3]), false);
    const random = await Promise.all([ops.generateRandomConcurrently(32), ops.generateRandomConcurrently(32)]);
    assert.notDeepEqual(random[0], random[1]);
  });

  it('reports a key the token lacks as KEY_OBJECT_MISSING, after looking again once', async () => {
    await assert.rejects(ops.signConcurrently('c/absent@1', 'ecdsa', 'sha256', Buffer.alloc(32)), (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(error.reason, 'KEY_OBJECT_MISSING');
      assert.equal(error.failureClass, 'appliance');
      return true;
    });
    // The reconnect behind that answer left the token serving.
    assert.equal((await ops.generateRandomConcurrently(8)).length, 8);
  });

  it('recovers every call in flight when the appliance drops all sessions, reconnecting once they have finished', async () => {
    const { publicKeySpki } = ops.generateKey('ECC_NIST_P256', 'c/heal@1');
    assert.ok(publicKeySpki);
    const key = createPublicKey({ key: publicKeySpki, format: 'der', type: 'spki' });
    // Warm the pool, then close every session of the slot, as an appliance restart would.
    await Promise.all(Array.from({ length: 8 }, () => ops.signConcurrently('c/heal@1', 'ecdsa', 'sha256', Buffer.alloc(32, 1))));
    token.module.C_CloseAllSessions(token.slot);
    const message = Buffer.from('after the restart');
    const digest = createHash('sha256').update(message).digest();
    const signatures = await Promise.all(Array.from({ length: 16 }, () => ops.signConcurrently('c/heal@1', 'ecdsa', 'sha256', digest)));
    for (const signature of signatures) {
      assert.equal(cryptoVerify('sha256', message, key, signature), true);
    }
    // The synchronous path works on the same reconnected token.
    assert.equal(ops.generateRandom(8).length, 8);
  });
});
