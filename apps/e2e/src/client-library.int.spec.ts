import assert from 'node:assert/strict';
import { createDecipheriv, createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createBrokerClient,
  DataKeySpec,
  KeySpec,
  KeyState,
  KeyUsage,
  MacAlgorithm,
  MessageType,
  SigningAlgorithm,
  type BrokerClient,
} from '@hsm-broker/client';
import { BrokerError, Code, codeName } from '@hsm-broker/errors';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';

// @hsm-broker/client against a real broker on a local SoftHSM fleet: every
// RPC through the typed methods, the errors as callers see them, and
// envelope encryption end to end.

/** Asserts that `promise` rejects with a BrokerError of this code and reason. */
async function rejectsWith(promise: Promise<unknown>, code: Code, reason: string): Promise<BrokerError> {
  let failure: unknown;
  await assert.rejects(promise, (error: unknown) => {
    failure = error;
    return true;
  });
  assert.ok(failure instanceof BrokerError, `expected a BrokerError, got ${String(failure)}`);
  assert.equal(codeName(failure.code), codeName(code), failure.message);
  assert.equal(failure.reason, reason, failure.message);
  return failure;
}

describe('@hsm-broker/client against a real broker', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  let client: BrokerClient;

  before(async () => {
    target = await startBrokerUnderTest();
    client = createBrokerClient({ address: target.address, deadlineMs: 60_000 });
    await client.createKey({ keyId: 'e2e/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    await client.createKey({ keyId: 'e2e/aes-2', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    await client.createKey({ keyId: 'e2e/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY });
    await client.createKey({ keyId: 'e2e/mac', keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC });
  });

  after(async () => {
    client?.close();
    await target?.dispose();
  });

  it('reports the fleet: three zones of one appliance each', async () => {
    const status = await client.getFleetStatus();
    assert.equal(status.appliances.length, 3);
    assert.equal(status.zones.length, 3);
    assert.ok(status.zones.some((zone) => zone.name === status.localZone));
    for (const appliance of status.appliances) assert.ok(appliance.workers > 0, appliance.id);
  });

  describe('KeyService', () => {
    it('creates and describes a key, with its replicas on every appliance', async () => {
      const created = await client.createKey({
        keyId: 'e2e/lifecycle',
        keySpec: KeySpec.AES_256,
        keyUsage: KeyUsage.ENCRYPT_DECRYPT,
        description: 'lifecycle',
        labels: { team: 'e2e' },
      });
      const key = created.keyMetadata;
      assert.ok(key);
      assert.equal(key.keyId, 'e2e/lifecycle');
      assert.equal(key.keySpec, KeySpec.AES_256);
      assert.equal(key.keyUsage, KeyUsage.ENCRYPT_DECRYPT);
      assert.equal(key.keyState, KeyState.ENABLED);
      assert.equal(key.primaryVersion, 1);
      assert.deepEqual(key.labels, { team: 'e2e' });
      assert.equal(key.replicas.length, 3);
      assert.deepEqual((await client.describeKey({ keyId: 'e2e/lifecycle' })).keyMetadata, key);
    });

    it('rotates a key; the old version still decrypts', async () => {
      const before = await client.encrypt({ keyId: 'e2e/lifecycle', plaintext: Buffer.from('v1') });
      assert.equal(before.keyVersion, 1);
      const rotated = await client.rotateKey({ keyId: 'e2e/lifecycle' });
      assert.equal(rotated.keyMetadata?.primaryVersion, 2);
      assert.deepEqual(
        rotated.keyMetadata?.versions.map((version) => version.version),
        [1, 2],
      );
      const after = await client.encrypt({ keyId: 'e2e/lifecycle', plaintext: Buffer.from('v2') });
      assert.equal(after.keyVersion, 2);
      const old = await client.decrypt({ ciphertext: before.ciphertext });
      assert.equal(old.keyVersion, 1);
      assert.equal(Buffer.from(old.plaintext).toString(), 'v1');
    });

    it('disables and enables a key; a disabled key refuses work with KEY_DISABLED', async () => {
      const disabled = await client.disableKey({ keyId: 'e2e/lifecycle' });
      assert.equal(disabled.keyMetadata?.keyState, KeyState.DISABLED);
      const failure = await rejectsWith(
        client.encrypt({ keyId: 'e2e/lifecycle', plaintext: Buffer.from('x') }),
        Code.FAILED_PRECONDITION,
        'KEY_DISABLED',
      );
      assert.equal(failure.retryable, false);
      assert.match(failure.message, /e2e\/lifecycle is disabled/);
      const enabled = await client.enableKey({ keyId: 'e2e/lifecycle' });
      assert.equal(enabled.keyMetadata?.keyState, KeyState.ENABLED);
      await client.encrypt({ keyId: 'e2e/lifecycle', plaintext: Buffer.from('x') });
    });

    it('schedules a deletion and cancels it; the key comes back DISABLED', async () => {
      const scheduled = await client.scheduleKeyDeletion({ keyId: 'e2e/lifecycle', pendingWindowDays: 7 });
      assert.equal(scheduled.keyMetadata?.keyState, KeyState.PENDING_DELETION);
      const deletionTime = scheduled.keyMetadata?.deletionTime?.getTime() ?? 0;
      const sevenDays = 7 * 24 * 60 * 60 * 1000;
      assert.ok(Math.abs(deletionTime - (Date.now() + sevenDays)) < 5 * 60 * 1000, String(deletionTime));
      await rejectsWith(
        client.encrypt({ keyId: 'e2e/lifecycle', plaintext: Buffer.from('x') }),
        Code.FAILED_PRECONDITION,
        'KEY_PENDING_DELETION',
      );
      const cancelled = await client.cancelKeyDeletion({ keyId: 'e2e/lifecycle' });
      assert.equal(cancelled.keyMetadata?.keyState, KeyState.DISABLED);
      assert.equal(cancelled.keyMetadata?.deletionTime, undefined);
      await client.enableKey({ keyId: 'e2e/lifecycle' });
    });

    it('lists one page with ListKeys and every key with listAllKeys', async () => {
      const made: string[] = [];
      for (let index = 0; index < 7; index += 1) {
        const keyId = `e2e/list/${String(index)}`;
        await client.createKey({ keyId, keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
        made.push(keyId);
      }
      const firstPage = await client.listKeys({ pageSize: 2 });
      assert.equal(firstPage.keys.length, 2);
      assert.notEqual(firstPage.nextPageToken, '');

      const walked: string[] = [];
      for await (const key of client.listAllKeys({ pageSize: 2 })) walked.push(key.keyId);
      assert.equal(new Set(walked).size, walked.length, 'no key is listed twice');
      for (const keyId of [...made, 'e2e/aes', 'e2e/ec', 'e2e/mac', 'e2e/lifecycle']) {
        assert.ok(walked.includes(keyId), keyId);
      }
      // One big page holds the same keys as the walk over small ones.
      const onePage = await client.listKeys({ pageSize: 1000 });
      assert.equal(onePage.nextPageToken, '');
      assert.deepEqual(
        onePage.keys.map((key) => key.keyId),
        walked,
      );
    });

    it('refuses bad requests with the reason the broker sends', async () => {
      await rejectsWith(client.describeKey({ keyId: 'e2e/none' }), Code.NOT_FOUND, 'KEY_NOT_FOUND');
      await rejectsWith(
        client.createKey({ keyId: 'e2e/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT }),
        Code.ALREADY_EXISTS,
        'KEY_EXISTS',
      );
      await rejectsWith(
        client.createKey({ keyId: 'e2e/bad', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.SIGN_VERIFY }),
        Code.INVALID_ARGUMENT,
        'INCOMPATIBLE_KEY_USAGE',
      );
      await rejectsWith(
        client.createKey({ keyId: 'has space', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT }),
        Code.INVALID_ARGUMENT,
        'INVALID_KEY_ID',
      );
      await rejectsWith(
        client.scheduleKeyDeletion({ keyId: 'e2e/aes-2', pendingWindowDays: 3 }),
        Code.INVALID_ARGUMENT,
        'INVALID_PENDING_WINDOW',
      );
      await rejectsWith(client.cancelKeyDeletion({ keyId: 'e2e/aes-2' }), Code.FAILED_PRECONDITION, 'KEY_NOT_PENDING_DELETION');
      await rejectsWith(client.listKeys({ pageToken: '!!' }), Code.INVALID_ARGUMENT, 'INVALID_PAGE_TOKEN');
    });
  });

  describe('CryptoService', () => {
    it('encrypts and decrypts with an encryption context', async () => {
      const plaintext = randomBytes(4096);
      const context = { tenant: 'acme', purpose: 'e2e' };
      const sealed = await client.encrypt({ keyId: 'e2e/aes', plaintext, encryptionContext: context });
      assert.equal(sealed.keyId, 'e2e/aes');
      assert.equal(sealed.keyVersion, 1);
      const opened = await client.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: context });
      assert.deepEqual(Buffer.from(opened.plaintext), plaintext);
      assert.equal(opened.keyId, 'e2e/aes');

      await rejectsWith(
        client.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: { tenant: 'other', purpose: 'e2e' } }),
        Code.INVALID_ARGUMENT,
        'INVALID_CIPHERTEXT',
      );
      const tampered = Buffer.from(sealed.ciphertext);
      tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
      await rejectsWith(
        client.decrypt({ ciphertext: tampered, encryptionContext: context }),
        Code.INVALID_ARGUMENT,
        'INVALID_CIPHERTEXT',
      );
      await rejectsWith(
        client.decrypt({ ciphertext: Buffer.from('not a ciphertext') }),
        Code.INVALID_ARGUMENT,
        'INVALID_CIPHERTEXT',
      );
      await rejectsWith(
        client.encrypt({ keyId: 'e2e/aes', plaintext: Buffer.alloc(65_537) }),
        Code.INVALID_ARGUMENT,
        'PLAINTEXT_TOO_LARGE',
      );
    });

    it('re-encrypts under another key and context', async () => {
      const sealed = await client.encrypt({
        keyId: 'e2e/aes',
        plaintext: Buffer.from('moving'),
        encryptionContext: { from: 'a' },
      });
      const moved = await client.reEncrypt({
        ciphertext: sealed.ciphertext,
        sourceEncryptionContext: { from: 'a' },
        destinationKeyId: 'e2e/aes-2',
        destinationEncryptionContext: { to: 'b' },
      });
      assert.equal(moved.sourceKeyId, 'e2e/aes');
      assert.equal(moved.keyId, 'e2e/aes-2');
      const opened = await client.decrypt({ ciphertext: moved.ciphertext, encryptionContext: { to: 'b' } });
      assert.equal(opened.keyId, 'e2e/aes-2');
      assert.equal(Buffer.from(opened.plaintext).toString(), 'moving');
    });

    it('mints data keys whose blobs decrypt to the same key, with and without plaintext', async () => {
      const context = { bucket: 'b1' };
      const withPlaintext = await client.generateDataKey({
        keyId: 'e2e/aes',
        keySpec: DataKeySpec.AES_256,
        encryptionContext: context,
      });
      assert.equal(withPlaintext.plaintext.length, 32);
      const unwrapped = await client.decrypt({ ciphertext: withPlaintext.ciphertextBlob, encryptionContext: context });
      assert.deepEqual(Buffer.from(unwrapped.plaintext), Buffer.from(withPlaintext.plaintext));

      const withoutPlaintext = await client.generateDataKeyWithoutPlaintext({
        keyId: 'e2e/aes',
        keySpec: DataKeySpec.AES_128,
        encryptionContext: context,
      });
      assert.equal(withoutPlaintext.keyId, 'e2e/aes');
      const short = await client.decrypt({ ciphertext: withoutPlaintext.ciphertextBlob, encryptionContext: context });
      assert.equal(short.plaintext.length, 16);
    });

    it('signs with ECDSA P-256; the signature verifies with node:crypto and with Verify', async () => {
      const message = Buffer.from('release 1.2.3');
      const publicKey = await client.getPublicKey({ keyId: 'e2e/ec' });
      assert.equal(publicKey.keySpec, KeySpec.ECC_NIST_P256);
      assert.ok(publicKey.signingAlgorithms.includes(SigningAlgorithm.ECDSA_SHA_256));
      const spki = createPublicKey(publicKey.publicKeyPem);
      assert.deepEqual(spki.export({ type: 'spki', format: 'der' }), Buffer.from(publicKey.publicKeyDer));

      const signed = await client.sign({
        keyId: 'e2e/ec',
        message,
        messageType: MessageType.RAW,
        signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
      });
      assert.equal(cryptoVerify('sha256', message, spki, signed.signature), true);
      const verified = await client.verify({
        keyId: 'e2e/ec',
        message,
        messageType: MessageType.RAW,
        signature: signed.signature,
        signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
      });
      assert.equal(verified.signatureValid, true);

      const digest = createHash('sha256').update(message).digest();
      const signedDigest = await client.sign({
        keyId: 'e2e/ec',
        message: digest,
        messageType: MessageType.DIGEST,
        signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
      });
      assert.equal(cryptoVerify('sha256', message, spki, signedDigest.signature), true);

      const otherMessage = await client.verify({
        keyId: 'e2e/ec',
        message: Buffer.from('release 1.2.4'),
        messageType: MessageType.RAW,
        signature: signed.signature,
        signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
      });
      assert.equal(otherMessage.signatureValid, false);
      await rejectsWith(
        client.sign({
          keyId: 'e2e/ec',
          message: Buffer.alloc(31),
          messageType: MessageType.DIGEST,
          signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
        }),
        Code.INVALID_ARGUMENT,
        'DIGEST_LENGTH_MISMATCH',
      );
    });

    it('computes and verifies HMACs', async () => {
      const message = Buffer.from('webhook body');
      const made = await client.generateMac({ keyId: 'e2e/mac', message, macAlgorithm: MacAlgorithm.HMAC_SHA_256 });
      assert.equal(made.mac.length, 32);
      const valid = await client.verifyMac({
        keyId: 'e2e/mac',
        message,
        mac: made.mac,
        macAlgorithm: MacAlgorithm.HMAC_SHA_256,
      });
      assert.equal(valid.macValid, true);
      const wrong = Buffer.from(made.mac);
      wrong[0] = (wrong[0] ?? 0) ^ 0xff;
      const invalid = await client.verifyMac({ keyId: 'e2e/mac', message, mac: wrong, macAlgorithm: MacAlgorithm.HMAC_SHA_256 });
      assert.equal(invalid.macValid, false);
    });

    it('draws random bytes', async () => {
      const first = await client.generateRandom({ numBytes: 1024 });
      const second = await client.generateRandom({ numBytes: 1024 });
      assert.equal(first.random.length, 1024);
      assert.notDeepEqual(first.random, second.random);
      await rejectsWith(client.generateRandom({ numBytes: 1025 }), Code.INVALID_ARGUMENT, 'INVALID_NUM_BYTES');
    });

    it('refuses a key used for the wrong purpose with WRONG_KEY_USAGE', async () => {
      await rejectsWith(
        client.encrypt({ keyId: 'e2e/ec', plaintext: Buffer.from('x') }),
        Code.FAILED_PRECONDITION,
        'WRONG_KEY_USAGE',
      );
      await rejectsWith(
        client.sign({
          keyId: 'e2e/aes',
          message: Buffer.from('x'),
          messageType: MessageType.RAW,
          signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
        }),
        Code.FAILED_PRECONDITION,
        'WRONG_KEY_USAGE',
      );
      await rejectsWith(
        client.generateMac({ keyId: 'e2e/aes', message: Buffer.from('x'), macAlgorithm: MacAlgorithm.HMAC_SHA_256 }),
        Code.FAILED_PRECONDITION,
        'WRONG_KEY_USAGE',
      );
      await rejectsWith(client.getPublicKey({ keyId: 'e2e/aes' }), Code.FAILED_PRECONDITION, 'NOT_ASYMMETRIC');
      await rejectsWith(
        client.encrypt({ keyId: 'e2e/none', plaintext: Buffer.from('x') }),
        Code.NOT_FOUND,
        'KEY_NOT_FOUND',
      );
    });
  });

  describe('envelope encryption', () => {
    const context = { tenant: 'acme', object: 'backups/2026-01-01.tar' };
    let data: Buffer;
    let envelope: Buffer;

    before(async () => {
      data = randomBytes(1024 * 1024);
      envelope = await client.encryptEnvelope('e2e/aes', data, context);
    });

    it('round-trips 1 MiB, which is more than one broker call may carry', async () => {
      assert.ok(envelope.length > data.length);
      assert.deepEqual(await client.decryptEnvelope(envelope, context), data);
    });

    it('decrypts with node:crypto alone, from the documented byte layout and the data key', async () => {
      // An independent reader: offsets from the format description, the
      // context encoding rebuilt by hand, and no library code but Decrypt.
      assert.equal(envelope.subarray(0, 4).toString('latin1'), 'HSBE');
      assert.equal(envelope[4], 1);
      const n = envelope.readUInt16BE(5);
      const wrappedKey = envelope.subarray(7, 7 + n);
      const iv = envelope.subarray(7 + n, 19 + n);
      const tag = envelope.subarray(19 + n, 35 + n);
      const ciphertext = envelope.subarray(35 + n);
      const dataKey = (await client.decrypt({ ciphertext: wrappedKey, encryptionContext: context })).plaintext;
      assert.equal(dataKey.length, 32, 'an AES-256 data key');
      const entry = (key: string, value: string): Buffer => {
        const k = Buffer.from(key, 'utf8');
        const v = Buffer.from(value, 'utf8');
        const keyLength = Buffer.alloc(2);
        keyLength.writeUInt16BE(k.length);
        const valueLength = Buffer.alloc(4);
        valueLength.writeUInt32BE(v.length);
        return Buffer.concat([keyLength, k, valueLength, v]);
      };
      // Sorted by key bytes: "object" before "tenant".
      const aad = Buffer.concat([envelope.subarray(0, 19 + n), entry('object', context.object), entry('tenant', context.tenant)]);
      const decipher = createDecipheriv('aes-256-gcm', dataKey, iv, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      assert.deepEqual(Buffer.concat([decipher.update(ciphertext), decipher.final()]), data);
    });

    it('refuses a different context', async () => {
      await rejectsWith(
        client.decryptEnvelope(envelope, { ...context, tenant: 'other' }),
        Code.INVALID_ARGUMENT,
        'INVALID_CIPHERTEXT',
      );
      await rejectsWith(client.decryptEnvelope(envelope), Code.INVALID_ARGUMENT, 'INVALID_CIPHERTEXT');
    });

    it('refuses a tampered blob, wherever it was changed', async () => {
      const wrappedKeyLength = envelope.readUInt16BE(5);
      const flip = (offset: number): Buffer => {
        const copy = Buffer.from(envelope);
        copy[offset] = (copy[offset] ?? 0) ^ 0x01;
        return copy;
      };
      // In the data: the broker unwraps the data key, the local GCM check fails.
      await rejectsWith(
        client.decryptEnvelope(flip(envelope.length - 1), context),
        Code.INVALID_ARGUMENT,
        'ENVELOPE_AUTHENTICATION_FAILED',
      );
      // In the IV: also authenticated.
      await rejectsWith(
        client.decryptEnvelope(flip(7 + wrappedKeyLength), context),
        Code.INVALID_ARGUMENT,
        'ENVELOPE_AUTHENTICATION_FAILED',
      );
      // In the wrapped data key: the broker refuses it.
      await rejectsWith(
        client.decryptEnvelope(flip(7 + wrappedKeyLength - 1), context),
        Code.INVALID_ARGUMENT,
        'INVALID_CIPHERTEXT',
      );
      await rejectsWith(
        client.decryptEnvelope(envelope.subarray(0, 20), context),
        Code.INVALID_ARGUMENT,
        'ENVELOPE_TRUNCATED',
      );
      await rejectsWith(client.decryptEnvelope(flip(0), context), Code.INVALID_ARGUMENT, 'ENVELOPE_BAD_MAGIC');
    });
  });
});
