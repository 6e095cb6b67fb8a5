import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { KeyRecord } from './key-model.js';
import { VerificationKeyCache } from './verification-key-cache.js';

function record(keyId: string, state: KeyRecord['keyState'] = 'ENABLED'): KeyRecord {
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
  return {
    keyId,
    keySpec: 'ECC_NIST_P256',
    keyUsage: 'SIGN_VERIFY',
    keyState: state,
    description: '',
    labels: {},
    createdAt: 0,
    deletionTime: undefined,
    primaryVersion: 1,
    versions: [{ version: 1, createdAt: 0, publicKey: spki, replicas: ['a'], replicaVerifiedAt: {} }],
    minDecryptionVersion: 1,
    rotationPeriodDays: 0,
    nextRotationTime: undefined,
  };
}

describe('VerificationKeyCache', () => {
  it('loads a key once, and again after it is invalidated', () => {
    const cache = new VerificationKeyCache();
    const store = new Map([['k', record('k')]]);
    let loads = 0;
    const load = (keyId: string): KeyRecord | undefined => {
      loads++;
      return store.get(keyId);
    };
    assert.equal(cache.record('k', load)?.keyState, 'ENABLED');
    assert.equal(cache.record('k', load)?.keyState, 'ENABLED');
    assert.equal(loads, 1);
    store.set('k', record('k', 'DISABLED'));
    assert.equal(cache.record('k', load)?.keyState, 'ENABLED', 'a change not announced is not seen');
    cache.invalidate('k');
    assert.equal(cache.record('k', load)?.keyState, 'DISABLED');
    assert.equal(loads, 2);
    cache.invalidate();
    assert.equal(cache.size, 0);
  });

  it('does not remember a missing key, so a key created later is found', () => {
    const cache = new VerificationKeyCache();
    const store = new Map<string, KeyRecord>();
    const load = (keyId: string): KeyRecord | undefined => store.get(keyId);
    assert.equal(cache.record('new', load), undefined);
    store.set('new', record('new'));
    assert.equal(cache.record('new', load)?.keyId, 'new');
  });

  it('parses a public key once per version and forgets the oldest key beyond its size', () => {
    const cache = new VerificationKeyCache(2);
    const store = new Map(['a', 'b', 'c'].map((id) => [id, record(id)]));
    const load = (keyId: string): KeyRecord | undefined => store.get(keyId);
    const version = store.get('a')?.versions[0];
    assert.ok(version);
    const first = cache.verifyingKey('a', version, load);
    assert.ok(first?.ec);
    assert.equal(cache.verifyingKey('a', version, load), first);
    cache.record('b', load);
    cache.record('c', load);
    assert.equal(cache.size, 2);
    assert.notEqual(cache.verifyingKey('a', version, load), first, 'a was evicted and parsed again');
  });
});
