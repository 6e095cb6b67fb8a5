import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { ecdsaDerToRaw, ecdsaRawToDer, publicKeyToSpki, spkiToPublicKey } from './asn1-encoding.js';

describe('ASN.1 helpers', () => {
  it('round-trips ECDSA signatures made by OpenSSL between DER and r||s', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (let i = 0; i < 50; i++) {
      const der = sign('sha256', Buffer.from(`m${String(i)}`), privateKey);
      const raw = ecdsaDerToRaw(der, 32);
      assert.ok(raw);
      assert.equal(raw.length, 64);
      assert.deepEqual(ecdsaRawToDer(raw), der);
    }
  });

  it('rejects malformed DER', () => {
    assert.equal(ecdsaDerToRaw(Buffer.from([0x30, 0x02, 0x02, 0x00]), 32), undefined);
    assert.equal(ecdsaDerToRaw(Buffer.alloc(0), 32), undefined);
    assert.equal(ecdsaDerToRaw(Buffer.from('3006020101020101ff', 'hex'), 32), undefined);
  });

  it('rebuilds SubjectPublicKeyInfo from PKCS#11 components', () => {
    for (const options of [{ type: 'ec', curve: 'P-384' }, { type: 'rsa' }] as const) {
      const { publicKey } =
        options.type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: options.curve })
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      assert.deepEqual(publicKeyToSpki(spkiToPublicKey(spki)), spki);
    }
  });
});
