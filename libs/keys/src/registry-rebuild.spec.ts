import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KeyObjectDescription } from '@hsm-broker/pkcs11';
import { assembleRebuiltKey, type FoundKeyObject } from './registry-rebuild.js';

// The rules that turn objects found on appliances into a key record, without
// appliances: which copies count as replicas, which versions are used, and
// that nothing comes back usable.

const now = Date.UTC(2026, 11, 2);

function aes(applianceId: string, version: number, fingerprint: string | undefined = 'aaaaaa'): FoundKeyObject {
  const object: KeyObjectDescription = {
    label: `hsmb:k:${String(version)}`,
    objectClass: 'secret',
    spec: 'AES_256',
    encrypts: true,
    signs: false,
    fingerprint,
  };
  return { applianceId, version, object };
}

describe('assembleRebuiltKey', () => {
  it('makes a DISABLED key with every version, the highest primary, replicas where copies agree', () => {
    const rebuilt = assembleRebuiltKey('k', [aes('a1', 1), aes('b1', 1), aes('c1', 2, 'bbbbbb'), aes('a1', 2, 'bbbbbb')], now);
    assert.ok(rebuilt);
    const { record, notes } = rebuilt;
    assert.equal(record.keyState, 'DISABLED');
    assert.equal(record.keySpec, 'AES_256');
    assert.equal(record.keyUsage, 'ENCRYPT_DECRYPT');
    assert.equal(record.primaryVersion, 2);
    assert.equal(record.minDecryptionVersion, 1);
    assert.deepEqual(record.versions.map((version) => version.replicas), [['a1', 'b1'], ['a1', 'c1']]);
    assert.deepEqual(Object.keys(record.versions[0]?.replicaVerifiedAt ?? {}), ['a1', 'b1']);
    assert.equal(record.rotationPeriodDays, 0);
    assert.match(record.description, /DISABLED until an operator reviews and enables it/);
    assert.deepEqual(notes, []);
  });

  it('leaves out a copy whose material differs from the majority, and says so', () => {
    const rebuilt = assembleRebuiltKey('k', [aes('a1', 1), aes('b1', 1), aes('c1', 1, 'ffffff')], now);
    assert.deepEqual(rebuilt?.record.versions[0]?.replicas, ['a1', 'b1']);
    assert.match(rebuilt?.notes.join('\n') ?? '', /version 1 on c1 left out: its key material differs/);
  });

  it('notes versions no appliance holds and starts decryption at the lowest one found', () => {
    const rebuilt = assembleRebuiltKey('k', [aes('a1', 2), aes('a1', 4)], now);
    assert.equal(rebuilt?.record.minDecryptionVersion, 2);
    assert.equal(rebuilt?.record.primaryVersion, 4);
    assert.match(rebuilt?.notes.join('\n') ?? '', /versions 1, 3 were found on no appliance/);
  });

  it('leaves out a version of another spec, or with the wrong usage attributes', () => {
    const hmac: FoundKeyObject = {
      applianceId: 'a1',
      version: 3,
      object: { label: 'hsmb:k:3', objectClass: 'secret', spec: 'HMAC_256', encrypts: false, signs: true, fingerprint: 'cccccc' },
    };
    const noEncrypt: FoundKeyObject = { ...aes('b1', 1), object: { ...aes('b1', 1).object, encrypts: false } };
    const rebuilt = assembleRebuiltKey('k', [aes('a1', 1), noEncrypt, aes('a1', 2), hmac], now);
    assert.deepEqual(rebuilt?.record.versions.map((version) => version.version), [1, 2]);
    assert.deepEqual(rebuilt?.record.versions[0]?.replicas, ['a1']);
    const notes = rebuilt?.notes.join('\n') ?? '';
    assert.match(notes, /version 3 left out: it is HMAC_256/);
    assert.match(notes, /version 1 on b1 left out: its type or usage attributes differ/);
  });

  it('says when copies could not be compared, and does not mark them verified', () => {
    const unchecked = (applianceId: string): FoundKeyObject => {
      const found = aes(applianceId, 1);
      return { ...found, object: { ...found.object, fingerprint: undefined } };
    };
    const rebuilt = assembleRebuiltKey('k', [unchecked('a1'), unchecked('b1')], now);
    assert.deepEqual(rebuilt?.record.versions[0]?.replicas, ['a1', 'b1']);
    assert.deepEqual(rebuilt?.record.versions[0]?.replicaVerifiedAt, {});
    assert.match(rebuilt?.notes.join('\n') ?? '', /were not compared/);
  });

  it('keeps copies without a check value beside a checked original, unverified', () => {
    const unchecked = (applianceId: string): FoundKeyObject => {
      const found = aes(applianceId, 1);
      return { ...found, object: { ...found.object, fingerprint: undefined } };
    };
    const rebuilt = assembleRebuiltKey('k', [aes('a1', 1), unchecked('b1'), unchecked('c1')], now);
    assert.deepEqual(rebuilt?.record.versions[0]?.replicas, ['a1', 'b1', 'c1']);
    assert.deepEqual(rebuilt?.record.versions[0]?.replicaVerifiedAt, {});
    assert.match(rebuilt?.notes.join('\n') ?? '', /copies on b1, c1 give no check value/);
  });

  it('gives nothing when no object matches a key spec', () => {
    const unknown: FoundKeyObject = {
      applianceId: 'a1',
      version: 1,
      object: { label: 'hsmb:k:1', objectClass: 'secret', spec: undefined, unrecognised: 'DES key', encrypts: true, signs: false, fingerprint: undefined },
    };
    assert.equal(assembleRebuiltKey('k', [unknown], now), undefined);
  });
});
