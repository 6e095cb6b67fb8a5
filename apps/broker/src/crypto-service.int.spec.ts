import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { DataKeySpec, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const signing: { spec: KeySpec; algorithms: SigningAlgorithm[] }[] = [
  { spec: KeySpec.ECC_NIST_P256, algorithms: [SigningAlgorithm.ECDSA_SHA_256] },
  { spec: KeySpec.ECC_NIST_P384, algorithms: [SigningAlgorithm.ECDSA_SHA_384] },
  {
    spec: KeySpec.RSA_2048,
    algorithms: [
      SigningAlgorithm.RSASSA_PSS_SHA_256,
      SigningAlgorithm.RSASSA_PSS_SHA_384,
      SigningAlgorithm.RSASSA_PSS_SHA_512,
      SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256,
      SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_384,
      SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_512,
    ],
  },
  { spec: KeySpec.RSA_3072, algorithms: [SigningAlgorithm.RSASSA_PSS_SHA_256, SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256] },
  { spec: KeySpec.RSA_4096, algorithms: [SigningAlgorithm.RSASSA_PSS_SHA_512, SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_512] },
];

function hashOf(algorithm: SigningAlgorithm): 'sha256' | 'sha384' | 'sha512' {
  const name = SigningAlgorithm[algorithm];
  return name.endsWith('256') ? 'sha256' : name.endsWith('384') ? 'sha384' : 'sha512';
}

/** Verifies with Node's crypto (OpenSSL), independent of the HSMs. */
function independentlyValid(spki: Buffer, algorithm: SigningAlgorithm, message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const name = SigningAlgorithm[algorithm];
  const hash = hashOf(algorithm);
  if (name.startsWith('ECDSA')) return cryptoVerify(hash, message, key, signature);
  const padding = name.startsWith('RSASSA_PSS') ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
  return cryptoVerify(hash, message, { key, padding, saltLength: createHash(hash).digest().length }, signature);
}

describe('CryptoService against a local SoftHSM fleet', { timeout: 600_000 }, () => {
  let t: TestBroker;

  before(async () => {
    t = await startTestBroker();
    await t.clients.keys.createKey({ keyId: 'app/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'app/aes-2', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'app/mac', keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    await t.dispose();
  });

  it('encrypts and decrypts with an encryption context, naming the key and version', async () => {
    const plaintext = Buffer.from('the launch codes');
    const context = { tenant: 'acme', purpose: 'test' };
    const sealed = await t.clients.crypto.encrypt({ keyId: 'app/aes', plaintext, encryptionContext: context });
    assert.equal(sealed.keyId, 'app/aes');
    assert.equal(sealed.keyVersion, 1);
    assert.ok(!sealed.ciphertext.includes(plaintext), 'ciphertext does not contain the plaintext');
    // Same context in another order still decrypts: the context is a map.
    const opened = await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: { purpose: 'test', tenant: 'acme' } });
    assert.deepEqual(opened.plaintext, plaintext);
    assert.equal(opened.keyId, 'app/aes');
    assert.equal(opened.keyVersion, 1);
  });

  it('rejects a different context, every flipped bit region and truncation with INVALID_ARGUMENT', async () => {
    const sealed = await t.clients.crypto.encrypt({ keyId: 'app/aes', plaintext: Buffer.from('0123456789abcdef'), encryptionContext: { a: '1' } });
    const wrongContext = await statusOf(t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: { a: '2' } }));
    assert.equal(wrongContext.code, status.INVALID_ARGUMENT);
    assert.match(wrongContext.message, /ciphertext/);
    const missingContext = await statusOf(t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} }));
    assert.equal(missingContext.code, status.INVALID_ARGUMENT);
    // Flip one bit in the magic, the key id, the version, the IV, the body and the tag.
    const c = sealed.ciphertext;
    for (const offset of [0, 5, 4 + 'app/aes'.length + 3, 4 + 'app/aes'.length + 4 + 2, c.length - 20, c.length - 1]) {
      const tampered = Buffer.from(c);
      tampered[offset] = (tampered[offset] ?? 0) ^ 0x01;
      const result = await statusOf(t.clients.crypto.decrypt({ ciphertext: tampered, encryptionContext: { a: '1' } }));
      assert.equal(result.code, status.INVALID_ARGUMENT, `bit flip at ${String(offset)}: ${result.message}`);
    }
    for (const length of [0, 3, 20, c.length - 1]) {
      const result = await statusOf(t.clients.crypto.decrypt({ ciphertext: c.subarray(0, length), encryptionContext: { a: '1' } }));
      assert.equal(result.code, status.INVALID_ARGUMENT, `truncated to ${String(length)}`);
    }
  });

  it('accepts 65536 plaintext bytes and refuses 65537 naming the field', async () => {
    const max = randomBytes(65536);
    const sealed = await t.clients.crypto.encrypt({ keyId: 'app/aes', plaintext: max, encryptionContext: {} });
    assert.deepEqual((await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} })).plaintext, max);
    const tooBig = await statusOf(t.clients.crypto.encrypt({ keyId: 'app/aes', plaintext: randomBytes(65537), encryptionContext: {} }));
    assert.equal(tooBig.code, status.INVALID_ARGUMENT);
    assert.match(tooBig.message, /plaintext/);
  });

  it('re-encrypts under another key without exposing the plaintext', async () => {
    const sealed = await t.clients.crypto.encrypt({ keyId: 'app/aes', plaintext: Buffer.from('move me'), encryptionContext: { from: 'a' } });
    const moved = await t.clients.crypto.reEncrypt({
      ciphertext: sealed.ciphertext,
      sourceEncryptionContext: { from: 'a' },
      destinationKeyId: 'app/aes-2',
      destinationEncryptionContext: { to: 'b' },
    });
    assert.equal(moved.sourceKeyId, 'app/aes');
    assert.equal(moved.keyId, 'app/aes-2');
    const opened = await t.clients.crypto.decrypt({ ciphertext: moved.ciphertext, encryptionContext: { to: 'b' } });
    assert.equal(opened.plaintext.toString(), 'move me');
    assert.equal(opened.keyId, 'app/aes-2');
    const wrongSource = await statusOf(
      t.clients.crypto.reEncrypt({ ciphertext: sealed.ciphertext, sourceEncryptionContext: {}, destinationKeyId: 'app/aes-2', destinationEncryptionContext: {} }),
    );
    assert.equal(wrongSource.code, status.INVALID_ARGUMENT);
  });

  it('mints data keys whose blobs decrypt to the same key, with and without plaintext', async () => {
    for (const [spec, length] of [[DataKeySpec.AES_256, 32], [DataKeySpec.AES_128, 16]] as const) {
      const dataKey = await t.clients.crypto.generateDataKey({ keyId: 'app/aes', keySpec: spec, encryptionContext: { k: 'v' } });
      assert.equal(dataKey.plaintext.length, length);
      const opened = await t.clients.crypto.decrypt({ ciphertext: dataKey.ciphertextBlob, encryptionContext: { k: 'v' } });
      assert.deepEqual(opened.plaintext, dataKey.plaintext);
    }
    const blind = await t.clients.crypto.generateDataKeyWithoutPlaintext({ keyId: 'app/aes', keySpec: DataKeySpec.AES_256, encryptionContext: {} });
    assert.equal('plaintext' in blind, false);
    assert.equal((await t.clients.crypto.decrypt({ ciphertext: blind.ciphertextBlob, encryptionContext: {} })).plaintext.length, 32);
    const unspecified = await statusOf(t.clients.crypto.generateDataKey({ keyId: 'app/aes', keySpec: DataKeySpec.UNSPECIFIED, encryptionContext: {} }));
    assert.equal(unspecified.code, status.INVALID_ARGUMENT);
    assert.match(unspecified.message, /key_spec/);
  });

  for (const { spec, algorithms } of signing) {
    it(`signs with ${KeySpec[spec]}; signatures verify with node:crypto and with Verify`, async () => {
      const keyId = `sign/${KeySpec[spec]}`;
      const created = await t.clients.keys.createKey({ keyId, keySpec: spec, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
      assert.equal(created.keyMetadata?.replicas.length, 3, 'the key is on every appliance');
      const publicKey = await t.clients.crypto.getPublicKey({ keyId, keyVersion: 0 });
      assert.deepEqual(createPublicKey(publicKey.publicKeyPem).export({ type: 'spki', format: 'der' }), publicKey.publicKeyDer);
      for (const algorithm of algorithms) {
        assert.ok(publicKey.signingAlgorithms.includes(algorithm));
        const message = Buffer.from(`message for ${SigningAlgorithm[algorithm]}`);
        const signed = await t.clients.crypto.sign({ keyId, message, messageType: MessageType.RAW, signingAlgorithm: algorithm });
        assert.equal(signed.signingAlgorithm, algorithm);
        assert.equal(independentlyValid(publicKey.publicKeyDer, algorithm, message, signed.signature), true, SigningAlgorithm[algorithm]);
        const verified = await t.clients.crypto.verify({ keyId, keyVersion: 0, message, messageType: MessageType.RAW, signature: signed.signature, signingAlgorithm: algorithm });
        assert.equal(verified.signatureValid, true);
        // A digest signed directly verifies against the message.
        const digest = createHash(hashOf(algorithm)).update(message).digest();
        const signedDigest = await t.clients.crypto.sign({ keyId, message: digest, messageType: MessageType.DIGEST, signingAlgorithm: algorithm });
        assert.equal(independentlyValid(publicKey.publicKeyDer, algorithm, message, signedDigest.signature), true);
        // A wrong signature is a clean "false".
        const wrong = Buffer.from(signed.signature);
        wrong[wrong.length - 2] = (wrong[wrong.length - 2] ?? 0) ^ 0x40;
        const rejected = await t.clients.crypto.verify({ keyId, keyVersion: 0, message, messageType: MessageType.RAW, signature: wrong, signingAlgorithm: algorithm });
        assert.equal(rejected.signatureValid, false);
        const otherMessage = await t.clients.crypto.verify({ keyId, keyVersion: 0, message: Buffer.from('other'), messageType: MessageType.RAW, signature: signed.signature, signingAlgorithm: algorithm });
        assert.equal(otherMessage.signatureValid, false);
      }
    });
  }

  it('refuses bad signing input with INVALID_ARGUMENT naming the field', async () => {
    const keyId = 'sign/ECC_NIST_P256';
    const longRaw = await statusOf(t.clients.crypto.sign({ keyId, message: Buffer.alloc(4097), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }));
    assert.equal(longRaw.code, status.INVALID_ARGUMENT);
    assert.match(longRaw.message, /^message/);
    const shortDigest = await statusOf(t.clients.crypto.sign({ keyId, message: Buffer.alloc(31), messageType: MessageType.DIGEST, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }));
    assert.equal(shortDigest.code, status.INVALID_ARGUMENT);
    const wrongAlgorithm = await statusOf(t.clients.crypto.sign({ keyId, message: Buffer.from('x'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PSS_SHA_256 }));
    assert.equal(wrongAlgorithm.code, status.INVALID_ARGUMENT);
    assert.match(wrongAlgorithm.message, /signing_algorithm/);
    const noType = await statusOf(t.clients.crypto.sign({ keyId, message: Buffer.from('x'), messageType: MessageType.UNSPECIFIED, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }));
    assert.equal(noType.code, status.INVALID_ARGUMENT);
    assert.match(noType.message, /message_type/);
    const bogusEnum = await statusOf(t.clients.crypto.sign({ keyId, message: Buffer.from('x'), messageType: MessageType.RAW, signingAlgorithm: 42 as SigningAlgorithm }));
    assert.equal(bogusEnum.code, status.INVALID_ARGUMENT);
    assert.match(bogusEnum.message, /signing_algorithm/);
    const noVersion = await statusOf(t.clients.crypto.verify({ keyId, keyVersion: 9, message: Buffer.from('x'), messageType: MessageType.RAW, signature: Buffer.alloc(8), signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }));
    assert.equal(noVersion.code, status.NOT_FOUND);
    assert.match(noVersion.message, /key_version/);
    const garbageSignature = await t.clients.crypto.verify({ keyId, keyVersion: 0, message: Buffer.from('x'), messageType: MessageType.RAW, signature: Buffer.from('not der'), signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.equal(garbageSignature.signatureValid, false);
  });

  it('computes and verifies HMACs; HMAC_256 keys take HMAC_SHA_256 only, as in KMS', async () => {
    for (const [algorithm, length] of [[MacAlgorithm.HMAC_SHA_256, 32]] as const) {
      const message = Buffer.from('authenticate me');
      const made = await t.clients.crypto.generateMac({ keyId: 'app/mac', message, macAlgorithm: algorithm });
      assert.equal(made.mac.length, length);
      const again = await t.clients.crypto.generateMac({ keyId: 'app/mac', message, macAlgorithm: algorithm });
      assert.deepEqual(again.mac, made.mac, 'HMAC is deterministic across appliances');
      assert.equal((await t.clients.crypto.verifyMac({ keyId: 'app/mac', keyVersion: 0, message, mac: made.mac, macAlgorithm: algorithm })).macValid, true);
      const wrong = Buffer.from(made.mac);
      wrong[0] = (wrong[0] ?? 0) ^ 1;
      assert.equal((await t.clients.crypto.verifyMac({ keyId: 'app/mac', keyVersion: 0, message, mac: wrong, macAlgorithm: algorithm })).macValid, false);
      assert.equal((await t.clients.crypto.verifyMac({ keyId: 'app/mac', keyVersion: 0, message, mac: made.mac.subarray(1), macAlgorithm: algorithm })).macValid, false);
    }
    for (const algorithm of [MacAlgorithm.HMAC_SHA_384, MacAlgorithm.HMAC_SHA_512]) {
      const refused = await statusOf(t.clients.crypto.generateMac({ keyId: 'app/mac', message: Buffer.from('m'), macAlgorithm: algorithm }));
      assert.equal(refused.code, status.INVALID_ARGUMENT);
      assert.match(refused.message, /^mac_algorithm/);
    }
    const tooLong = await statusOf(t.clients.crypto.generateMac({ keyId: 'app/mac', message: Buffer.alloc(4097), macAlgorithm: MacAlgorithm.HMAC_SHA_256 }));
    assert.equal(tooLong.code, status.INVALID_ARGUMENT);
  });

  it('draws random bytes from an HSM within 1..1024', async () => {
    const a = await t.clients.crypto.generateRandom({ numBytes: 1024 });
    const b = await t.clients.crypto.generateRandom({ numBytes: 1024 });
    assert.equal(a.random.length, 1024);
    assert.notDeepEqual(a.random, b.random);
    assert.equal((await t.clients.crypto.generateRandom({ numBytes: 1 })).random.length, 1);
    for (const numBytes of [0, 1025]) {
      const refused = await statusOf(t.clients.crypto.generateRandom({ numBytes }));
      assert.equal(refused.code, status.INVALID_ARGUMENT);
      assert.match(refused.message, /num_bytes/);
    }
  });

  it('gives FAILED_PRECONDITION for the wrong usage or a disabled key, NOT_FOUND for an unknown key', async () => {
    const wrongUsage = await statusOf(t.clients.crypto.sign({ keyId: 'app/aes', message: Buffer.from('x'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }));
    assert.equal(wrongUsage.code, status.FAILED_PRECONDITION);
    const encryptWithSigningKey = await statusOf(t.clients.crypto.encrypt({ keyId: 'sign/ECC_NIST_P256', plaintext: Buffer.from('x'), encryptionContext: {} }));
    assert.equal(encryptWithSigningKey.code, status.FAILED_PRECONDITION);
    const macWithAes = await statusOf(t.clients.crypto.generateMac({ keyId: 'app/aes', message: Buffer.from('x'), macAlgorithm: MacAlgorithm.HMAC_SHA_256 }));
    assert.equal(macWithAes.code, status.FAILED_PRECONDITION);
    const noPublicKey = await statusOf(t.clients.crypto.getPublicKey({ keyId: 'app/aes', keyVersion: 0 }));
    assert.equal(noPublicKey.code, status.FAILED_PRECONDITION);

    const sealed = await t.clients.crypto.encrypt({ keyId: 'app/aes-2', plaintext: Buffer.from('x'), encryptionContext: {} });
    await t.clients.keys.disableKey({ keyId: 'app/aes-2' });
    const disabledEncrypt = await statusOf(t.clients.crypto.encrypt({ keyId: 'app/aes-2', plaintext: Buffer.from('x'), encryptionContext: {} }));
    assert.equal(disabledEncrypt.code, status.FAILED_PRECONDITION);
    assert.match(disabledEncrypt.message, /disabled/);
    const disabledDecrypt = await statusOf(t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} }));
    assert.equal(disabledDecrypt.code, status.FAILED_PRECONDITION);
    await t.clients.keys.enableKey({ keyId: 'app/aes-2' });
    assert.equal((await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} })).plaintext.toString(), 'x');

    const unknown = await statusOf(t.clients.crypto.encrypt({ keyId: 'no/such/key', plaintext: Buffer.from('x'), encryptionContext: {} }));
    assert.equal(unknown.code, status.NOT_FOUND);
    assert.match(unknown.message, /key_id/);
    const missing = await statusOf(t.clients.crypto.encrypt({ keyId: '', plaintext: Buffer.from('x'), encryptionContext: {} }));
    assert.equal(missing.code, status.INVALID_ARGUMENT);
    assert.match(missing.message, /key_id/);
  });

  it('keeps old versions decrypting and verifying after rotation', async () => {
    await t.clients.keys.createKey({ keyId: 'rot/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'rot/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    const before = await t.clients.crypto.encrypt({ keyId: 'rot/aes', plaintext: Buffer.from('v1 data'), encryptionContext: {} });
    const oldSignature = await t.clients.crypto.sign({ keyId: 'rot/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    const oldPublic = await t.clients.crypto.getPublicKey({ keyId: 'rot/ec', keyVersion: 0 });
    const rotated = await t.clients.keys.rotateKey({ keyId: 'rot/aes' });
    assert.equal(rotated.keyMetadata?.primaryVersion, 2);
    assert.equal(rotated.keyMetadata?.versions.length, 2);
    await t.clients.keys.rotateKey({ keyId: 'rot/ec' });
    const after = await t.clients.crypto.encrypt({ keyId: 'rot/aes', plaintext: Buffer.from('v2 data'), encryptionContext: {} });
    assert.equal(after.keyVersion, 2);
    const openedOld = await t.clients.crypto.decrypt({ ciphertext: before.ciphertext, encryptionContext: {} });
    assert.equal(openedOld.plaintext.toString(), 'v1 data');
    assert.equal(openedOld.keyVersion, 1);
    assert.equal((await t.clients.crypto.decrypt({ ciphertext: after.ciphertext, encryptionContext: {} })).keyVersion, 2);

    const newSignature = await t.clients.crypto.sign({ keyId: 'rot/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.equal(newSignature.keyVersion, 2);
    const v1 = await t.clients.crypto.verify({ keyId: 'rot/ec', keyVersion: 1, message: Buffer.from('m'), messageType: MessageType.RAW, signature: oldSignature.signature, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.equal(v1.signatureValid, true);
    const oldWithNewKey = await t.clients.crypto.verify({ keyId: 'rot/ec', keyVersion: 0, message: Buffer.from('m'), messageType: MessageType.RAW, signature: oldSignature.signature, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.equal(oldWithNewKey.signatureValid, false, 'version 2 is a different key');
    const newPublic = await t.clients.crypto.getPublicKey({ keyId: 'rot/ec', keyVersion: 0 });
    assert.equal(newPublic.keyVersion, 2);
    assert.notDeepEqual(newPublic.publicKeyDer, oldPublic.publicKeyDer);
    assert.deepEqual((await t.clients.crypto.getPublicKey({ keyId: 'rot/ec', keyVersion: 1 })).publicKeyDer, oldPublic.publicKeyDer);
  });
});
