import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { ecdsaDerToRaw, ecdsaRawToDer, hashLength } from '@hsm-broker/pkcs11';
import type { HashName, SignatureScheme } from '@hsm-broker/pkcs11';
import { verifyInSoftware, verifyingKeyOf } from './software-verify.js';

interface Case {
  name: string;
  scheme: SignatureScheme;
  hash: HashName;
  pair: () => { publicKey: KeyObject; privateKey: KeyObject };
}

const ec = (namedCurve: string) => () => generateKeyPairSync('ec', { namedCurve });
const rsa = (modulusLength: number) => () => generateKeyPairSync('rsa', { modulusLength });

const cases: Case[] = [
  { name: 'ECDSA P-256 SHA-256', scheme: 'ecdsa', hash: 'sha256', pair: ec('P-256') },
  { name: 'ECDSA P-384 SHA-384', scheme: 'ecdsa', hash: 'sha384', pair: ec('P-384') },
  { name: 'RSA-2048 PSS SHA-256', scheme: 'rsa-pss', hash: 'sha256', pair: rsa(2048) },
  { name: 'RSA-3072 PSS SHA-512', scheme: 'rsa-pss', hash: 'sha512', pair: rsa(3072) },
  { name: 'RSA-2048 PKCS#1 v1.5 SHA-384', scheme: 'rsa-pkcs1', hash: 'sha384', pair: rsa(2048) },
];

/** Signs as the appliances do: DER ECDSA, PSS with a salt as long as the hash. */
function signWith(privateKey: KeyObject, scheme: SignatureScheme, hash: HashName, message: Buffer): Buffer {
  if (scheme === 'ecdsa') return sign(hash, message, privateKey);
  const padding = scheme === 'rsa-pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
  return sign(hash, message, { key: privateKey, padding, saltLength: hashLength[hash] });
}

describe('verifyInSoftware', () => {
  for (const { name, scheme, hash, pair } of cases) {
    describe(name, () => {
      const { publicKey, privateKey } = pair();
      const key = verifyingKeyOf(publicKey);
      const other = verifyingKeyOf(pair().publicKey);

      it('accepts node:crypto signatures given the message or its digest, many times over', () => {
        // Many signatures, so that every branch of the point arithmetic (both ordinates, both scalar halves) is met.
        for (let round = 0; round < 40; round++) {
          const message = randomBytes(1 + (round % 97));
          const digest = createHash(hash).update(message).digest();
          const signature = signWith(privateKey, scheme, hash, message);
          assert.equal(verifyInSoftware(key, scheme, hash, message, false, signature), true, `raw, round ${String(round)}`);
          assert.equal(verifyInSoftware(key, scheme, hash, digest, true, signature), true, `digest, round ${String(round)}`);
        }
      });

      it('rejects a tampered signature, another message, another key and garbage', () => {
        const message = Buffer.from('the message');
        const digest = createHash(hash).update(message).digest();
        const signature = signWith(privateKey, scheme, hash, message);
        for (const index of [0, Math.floor(signature.length / 2), signature.length - 1]) {
          const tampered = Buffer.from(signature);
          tampered[index] = (tampered[index] ?? 0) ^ 0x01;
          assert.equal(verifyInSoftware(key, scheme, hash, message, false, tampered), false, `raw, byte ${String(index)}`);
          assert.equal(verifyInSoftware(key, scheme, hash, digest, true, tampered), false, `digest, byte ${String(index)}`);
        }
        const otherDigest = createHash(hash).update('another message').digest();
        assert.equal(verifyInSoftware(key, scheme, hash, Buffer.from('another message'), false, signature), false);
        assert.equal(verifyInSoftware(key, scheme, hash, otherDigest, true, signature), false);
        assert.equal(verifyInSoftware(other, scheme, hash, message, false, signature), false);
        assert.equal(verifyInSoftware(other, scheme, hash, digest, true, signature), false);
        for (const garbage of [Buffer.alloc(0), Buffer.from('not a signature'), Buffer.alloc(signature.length, 0xff)]) {
          assert.equal(verifyInSoftware(key, scheme, hash, message, false, garbage), false);
          assert.equal(verifyInSoftware(key, scheme, hash, digest, true, garbage), false);
        }
      });
    });
  }

  it('ECDSA: rejects r or s out of range, and accepts the non-minimal DER the HSM path accepts', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = verifyingKeyOf(publicKey);
    const message = Buffer.from('m');
    const digest = createHash('sha256').update(message).digest();
    const raw = ecdsaDerToRaw(sign('sha256', message, privateKey), 32);
    assert.ok(raw);
    const zeroR = ecdsaRawToDer(Buffer.concat([Buffer.alloc(32), raw.subarray(32)]));
    assert.equal(verifyInSoftware(key, 'ecdsa', 'sha256', digest, true, zeroR), false);
    const order = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
    const bigS = ecdsaRawToDer(Buffer.concat([raw.subarray(0, 32), order]));
    assert.equal(verifyInSoftware(key, 'ecdsa', 'sha256', digest, true, bigS), false);
    // The same signature with a needless leading zero on r.
    const lenient = Buffer.concat([Buffer.from([0x30, 0, 0x02, 33, 0]), raw.subarray(0, 32), Buffer.from([0x02, 32]), raw.subarray(32)]);
    lenient[1] = lenient.length - 2;
    assert.equal(verifyInSoftware(key, 'ecdsa', 'sha256', digest, true, lenient), true);
    assert.equal(verifyInSoftware(key, 'ecdsa', 'sha256', message, false, lenient), true);
  });
});
