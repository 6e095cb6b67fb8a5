import assert from 'node:assert/strict';
import { createHash, createPublicKey, createVerify, randomBytes, verify as cryptoVerify, constants } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { BrokerError, Code } from '@hsm-broker/errors';
import { FleetKek } from './fleet-kek.js';
import { KeyOperations } from './key-operations.js';
import { Pkcs11Token } from './pkcs11-token.js';
import { softhsmModulePath, useTemporarySoftHsm } from './softhsm-test-token.js';
import { initializeToken } from './token-initialization.js';

const kekLabel = 'hsmb-fleet-kek';

describe('KeyOperations on SoftHSM', () => {
  const softhsm = useTemporarySoftHsm();
  const pins = { a: { so: randomBytes(8).toString('hex'), user: randomBytes(8).toString('hex') }, b: { so: randomBytes(8).toString('hex'), user: randomBytes(8).toString('hex') } };
  let a: Pkcs11Token;
  let b: Pkcs11Token;
  let opsA: KeyOperations;
  let opsB: KeyOperations;

  before(() => {
    initializeToken({ modulePath: softhsmModulePath, label: 'appliance-a', soPin: pins.a.so, userPin: pins.a.user });
    initializeToken({ modulePath: softhsmModulePath, label: 'appliance-b', soPin: pins.b.so, userPin: pins.b.user });
    // Establish the KEK on A and carry it to B under B's enrollment key.
    const soA = Pkcs11Token.open({ modulePath: softhsmModulePath, selector: { token: 'appliance-a' }, role: 'so', pin: pins.a.so });
    const soB = Pkcs11Token.open({ modulePath: softhsmModulePath, selector: { token: 'appliance-b' }, role: 'so', pin: pins.b.so });
    const kekA = new FleetKek(soA);
    const kekB = new FleetKek(soB);
    kekA.generate(kekLabel, 'kek-1');
    const enrollment = kekB.createEnrollmentKey();
    kekB.receive(kekLabel, 'kek-1', kekA.wrapFor(kekLabel, enrollment));
    assert.equal(kekB.kekId(kekLabel), 'kek-1');
    soB.close();
    soA.close();
    a = Pkcs11Token.open({ modulePath: softhsmModulePath, selector: { token: 'appliance-a' }, role: 'user', pin: pins.a.user });
    b = Pkcs11Token.open({ modulePath: softhsmModulePath, selector: { token: 'appliance-b' }, role: 'user', pin: pins.b.user });
    opsA = new KeyOperations(a);
    opsB = new KeyOperations(b);
  });

  after(() => {
    b.close();
    a.close();
    softhsm[Symbol.dispose]();
  });

  it('encrypts with AES-256-GCM and rejects a flipped bit and a wrong AAD as INVALID_ARGUMENT', () => {
    opsA.generateKey('AES_256', 'k/aes@1');
    const iv = randomBytes(12);
    const aad = Buffer.from('context');
    const ciphertext = opsA.encrypt('k/aes@1', iv, aad, Buffer.from('attack at dawn'));
    assert.equal(ciphertext.length, 14 + 16);
    assert.equal(opsA.decrypt('k/aes@1', iv, aad, ciphertext).toString(), 'attack at dawn');
    const tampered = Buffer.from(ciphertext);
    tampered[3] = (tampered[3] ?? 0) ^ 1;
    assert.throws(() => opsA.decrypt('k/aes@1', iv, aad, tampered), (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      assert.equal(error.failureClass, 'caller');
      return true;
    });
    assert.throws(() => opsA.decrypt('k/aes@1', iv, Buffer.from('other'), ciphertext), /C_Decrypt/);
    // The session still works after a failed decryption.
    assert.equal(opsA.decrypt('k/aes@1', iv, aad, ciphertext).toString(), 'attack at dawn');
  });

  it('replicates an AES key to another token under the trusted KEK', () => {
    opsA.generateKey('AES_256', 'k/repl@1');
    const wrapped = opsA.wrapKey('AES_256', 'k/repl@1', kekLabel);
    opsB.unwrapKey('AES_256', 'k/repl@1', kekLabel, wrapped);
    const iv = randomBytes(12);
    const ciphertext = opsA.encrypt('k/repl@1', iv, Buffer.alloc(0), Buffer.from('same key'));
    assert.equal(opsB.decrypt('k/repl@1', iv, Buffer.alloc(0), ciphertext).toString(), 'same key');
  });

  for (const [spec, hash, scheme] of [
    ['ECC_NIST_P256', 'sha256', 'ecdsa'],
    ['ECC_NIST_P384', 'sha384', 'ecdsa'],
    ['RSA_2048', 'sha256', 'rsa-pss'],
    ['RSA_2048', 'sha512', 'rsa-pkcs1'],
  ] as const) {
    it(`signs with ${spec} ${scheme} ${hash} on a replica, verified by node:crypto`, () => {
      const label = `k/${spec}-${scheme}-${hash}@1`;
      const { publicKeySpki } = opsA.generateKey(spec, label);
      assert.ok(publicKeySpki);
      opsB.unwrapKey(spec, label, kekLabel, opsA.wrapKey(spec, label, kekLabel));
      assert.deepEqual(opsB.publicKey(spec, label), publicKeySpki);
      const message = Buffer.from('message to sign');
      const digest = createHash(hash).update(message).digest();
      const signature = opsB.sign(label, scheme, hash, digest);
      const key = createPublicKey({ key: publicKeySpki, format: 'der', type: 'spki' });
      const padding = scheme === 'rsa-pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      const ok = scheme === 'ecdsa'
        ? createVerify(hash).update(message).verify(key, signature)
        : cryptoVerify(hash, message, { key, padding, saltLength: scheme === 'rsa-pss' ? digest.length : undefined }, signature);
      assert.equal(ok, true, 'node:crypto accepts the HSM signature');
      assert.equal(opsA.verify(spec, label, scheme, hash, digest, signature), true);
      const wrong = Buffer.from(signature);
      wrong[wrong.length - 1] = (wrong[wrong.length - 1] ?? 0) ^ 1;
      assert.equal(opsA.verify(spec, label, scheme, hash, digest, wrong), false);
      assert.equal(opsA.verify(spec, label, scheme, hash, digest, Buffer.from([0x30, 0x02])), false);
    });
  }

  it('computes and verifies HMACs inside the token', () => {
    opsA.generateKey('HMAC_256', 'k/mac@1');
    opsB.unwrapKey('HMAC_256', 'k/mac@1', kekLabel, opsA.wrapKey('HMAC_256', 'k/mac@1', kekLabel));
    const mac = opsA.generateMac('k/mac@1', 'sha256', Buffer.from('m'));
    assert.equal(mac.length, 32);
    assert.equal(opsB.verifyMac('k/mac@1', 'sha256', Buffer.from('m'), mac), true);
    assert.equal(opsB.verifyMac('k/mac@1', 'sha256', Buffer.from('n'), mac), false);
  });

  it('keeps key material sensitive: wrapping under a real key that is not trusted is refused', () => {
    opsA.generateKey('AES_256', 'k/wrap-me@1');
    opsA.generateKey('ECC_NIST_P256', 'k/wrap-me-ec@1');
    // A real AES wrapping key, made by the user (so never CKA_TRUSTED), able to wrap.
    a.run((session, module) =>
      module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_LABEL, value: 'untrusted-kek' },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_WRAP, value: true },
        { type: pkcs11js.CKA_UNWRAP, value: true },
      ]),
    );
    const trusted = a.run((session, module) => {
      const handle = a.findByLabel(pkcs11js.CKO_SECRET_KEY, 'untrusted-kek');
      assert.ok(handle);
      return module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_TRUSTED }, { type: pkcs11js.CKA_WRAP }]);
    });
    assert.deepEqual(trusted.map((attribute) => Buffer.from(attribute.value)[0]), [0, 1], 'a wrapping key that is not trusted');
    for (const [spec, label] of [
      ['AES_256', 'k/wrap-me@1'],
      ['ECC_NIST_P256', 'k/wrap-me-ec@1'],
    ] as const) {
      assert.throws(() => opsA.wrapKey(spec, label, 'untrusted-kek'), (error: unknown) => {
        assert.ok(error instanceof BrokerError, String(error));
        assert.notEqual(error.reason, 'KEY_OBJECT_MISSING', 'both keys exist: the refusal is the token’s');
        assert.match(error.message, /C_WrapKey.*CKR_(KEY_NOT_WRAPPABLE|WRAPPING_KEY_HANDLE_INVALID|KEY_FUNCTION_NOT_PERMITTED)/);
        return true;
      }, `${spec} leaves only under the trusted KEK`);
    }
    // The same key under the trusted KEK: the refusal was about trust, not about the key.
    assert.ok(opsA.wrapKey('AES_256', 'k/wrap-me@1', kekLabel).wrapped.length > 32);
  });

  it('marks every key object, original and replica, sensitive, not extractable in the clear and wrap-with-trusted', () => {
    const specs = [
      ['AES_256', 'k/attrs-aes@1', pkcs11js.CKO_SECRET_KEY],
      ['HMAC_256', 'k/attrs-mac@1', pkcs11js.CKO_SECRET_KEY],
      ['ECC_NIST_P256', 'k/attrs-ec@1', pkcs11js.CKO_PRIVATE_KEY],
      ['RSA_2048', 'k/attrs-rsa@1', pkcs11js.CKO_PRIVATE_KEY],
    ] as const;
    for (const [spec, label] of specs) {
      opsA.generateKey(spec, label);
      opsB.unwrapKey(spec, label, kekLabel, opsA.wrapKey(spec, label, kekLabel));
    }
    for (const [name, token] of [
      ['appliance-a (original)', a],
      ['appliance-b (replica)', b],
    ] as const) {
      for (const [spec, label, objectClass] of specs) {
        const values = token.run((session, module) => {
          const handle = token.findByLabel(objectClass, label);
          assert.ok(handle, `${label} on ${name}`);
          return module
            .C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_WRAP_WITH_TRUSTED }])
            .map((attribute) => Buffer.from(attribute.value)[0]);
        });
        // Extractable only by wrapping (C_WrapKey), and then only under a trusted key;
        // sensitive, so CKA_VALUE never leaves in the clear.
        assert.deepEqual(values, [1, 1, 1], `${spec} on ${name}: CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED`);
        const value = token.run((session, module) => {
          const handle = token.findByLabel(objectClass, label);
          assert.ok(handle);
          try {
            const secret = spec.startsWith('RSA_') ? pkcs11js.CKA_PRIVATE_EXPONENT : pkcs11js.CKA_VALUE;
            return module.C_GetAttributeValue(session, handle, [{ type: secret }])[0]?.value;
          } catch (error: unknown) {
            return error instanceof Error ? error.message : String(error);
          }
        });
        assert.match(String(value), /CKR_ATTRIBUTE_SENSITIVE/, `${spec} on ${name}: the value cannot be read`);
      }
    }
  });

  it('lists and destroys key objects by label prefix', () => {
    opsA.generateKey('AES_256', 'inv/one@1');
    opsA.generateKey('ECC_NIST_P256', 'inv/two@1');
    const labels = opsA.listKeys('inv/').map((item) => item.label).sort();
    assert.deepEqual(labels, ['inv/one@1', 'inv/two@1']);
    assert.equal(opsA.destroyKey('inv/two@1'), 2);
    assert.deepEqual(opsA.listKeys('inv/').map((item) => item.label), ['inv/one@1']);
    assert.throws(() => opsA.sign('inv/two@1', 'ecdsa', 'sha256', Buffer.alloc(32)), (error: unknown) => error instanceof BrokerError && error.reason === 'KEY_OBJECT_MISSING');
  });

  it('reports random bytes and mechanisms', () => {
    const r1 = opsA.generateRandom(32);
    const r2 = opsA.generateRandom(32);
    assert.equal(r1.length, 32);
    assert.notDeepEqual(r1, r2);
    const mechanisms = opsA.mechanisms();
    assert.ok(mechanisms.includes('CKM_AES_GCM'));
    assert.ok(mechanisms.includes('CKM_ECDSA'));
  });

  it('recovers after its session is closed underneath it', () => {
    opsA.generateKey('AES_256', 'k/heal@1');
    const iv = randomBytes(12);
    const ciphertext = opsA.encrypt('k/heal@1', iv, Buffer.alloc(0), Buffer.from('x'));
    // Close every session of the slot, as an appliance restart would.
    a.module.C_CloseAllSessions(a.slot);
    assert.equal(opsA.decrypt('k/heal@1', iv, Buffer.alloc(0), ciphertext).toString(), 'x');
  });

  it('recovers when the key lookup inside a call is what finds the session closed', () => {
    // The lookup is a call of its own inside the operation's; it must not
    // reconnect under the operation, which would be left holding an unloaded
    // module ("PKCS11 module not loaded yet", an INTERNAL error).
    opsA.generateKey('HMAC_256', 'k/nested@1');
    const spki = opsA.generateKey('ECC_NIST_P256', 'k/nested-ec@1').publicKeySpki ?? Buffer.alloc(0);
    const message = Buffer.from('nested lookup');
    const mac = opsA.generateMac('k/nested@1', 'sha256', message);
    const digest = createHash('sha256').update(message).digest();
    for (const label of ['k/nested@1', 'k/nested-ec@1']) a.forget(label);
    a.module.C_CloseAllSessions(a.slot);
    assert.equal(opsA.verifyMac('k/nested@1', 'sha256', message, mac), true);
    assert.equal(opsA.verifyMac('k/nested@1', 'sha256', Buffer.from('another message'), mac), false);
    a.forget('k/nested-ec@1');
    a.module.C_CloseAllSessions(a.slot);
    const signature = opsA.sign('k/nested-ec@1', 'ecdsa', 'sha256', digest);
    assert.ok(cryptoVerify('sha256', message, createPublicKey({ key: spki, format: 'der', type: 'spki' }), signature), 'the signature verifies with node:crypto');
  });
});
