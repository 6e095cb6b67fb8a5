import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import type { KeyUsage } from './key-model.js';
import { KeyRegistry } from './key-registry.js';
import type { DurabilityPolicy } from './registry-options.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
import { InMemoryFleet } from './testing/in-memory-fleet.js';

/** Three appliances in two zones unless told otherwise; every one enrolled. */
function setUp(
  zones: Record<string, string> = { a: 'z1', b: 'z1', c: 'z2' },
  durability: DurabilityPolicy = { minAppliances: 2, minZones: 2 },
  enrolled: ReadonlySet<string> = new Set(Object.keys(zones)),
): { fleet: InMemoryFleet; store: SqliteKeyStore; registry: KeyRegistry } {
  const fleet = new InMemoryFleet(zones);
  const store = new SqliteKeyStore(':memory:');
  return { fleet, store, registry: new KeyRegistry({ fleet, store, durability, enrolled: () => enrolled }) };
}

function create(registry: KeyRegistry, keyId: string, keySpec: KeyMaterialSpec = 'AES_256', keyUsage: KeyUsage = 'ENCRYPT_DECRYPT'): ReturnType<KeyRegistry['createKey']> {
  return registry.createKey({ keyId, keySpec, keyUsage, description: '', labels: {}, rotationPeriodDays: 0 });
}

const quorumRefused = (when: RegExp) => (error: unknown): boolean => error instanceof BrokerError && error.reason === 'DURABILITY_QUORUM_NOT_MET' && when.test(error.message);

describe('key replication', () => {
  it('makes a key usable only once it is on every reachable enrolled appliance that verified its copy', async () => {
    const { fleet, store, registry } = setUp();
    const key = await create(registry, 'k');
    assert.deepEqual(key.versions[0]?.replicas.slice().sort(), ['a', 'b', 'c']);
    for (const id of ['a', 'b', 'c']) assert.deepEqual(fleet.labelsOn(id), ['hsmb:k:1']);
    const sealed = await registry.encrypt('k', Buffer.from('secret'), {});
    assert.equal((await registry.decrypt(sealed.ciphertext, {})).plaintext.toString(), 'secret');
    store.close();
  });

  it('places no replica on an appliance outside the fleet KEK enrollment', async () => {
    const { fleet, store, registry } = setUp({ a: 'z1', b: 'z2', c: 'z3' }, { minAppliances: 2, minZones: 2 }, new Set(['a', 'b']));
    const key = await create(registry, 'k');
    assert.deepEqual(key.versions[0]?.replicas.slice().sort(), ['a', 'b']);
    assert.deepEqual(fleet.labelsOn('c'), []);
    assert.equal(fleet.calls.filter((call) => call.applianceId === 'c').length, 0);
    store.close();
  });

  it('creates nothing when the reachable appliances cannot meet the quorum in zones', async () => {
    const { fleet, store, registry } = setUp();
    fleet.setAvailable('c', false);
    await assert.rejects(create(registry, 'k'), quorumRefused(/before creating anything: 2 appliance\(s\) in 1 zone/));
    assert.deepEqual(fleet.callsOf('generateKey'), [], 'no key material was generated');
    assert.equal(store.getKey('k'), undefined);
    store.close();
  });

  it('refuses a key whose copies ended up in too few zones, and destroys every copy', async () => {
    const { fleet, store, registry } = setUp();
    // c answers routing but fails every call: the copies land on a and b only, both in z1.
    fleet.failing.add('c');
    await assert.rejects(create(registry, 'k'), quorumRefused(/after replication: 2 appliance\(s\) in 1 zone/));
    assert.deepEqual([fleet.labelsOn('a'), fleet.labelsOn('b')], [[], []]);
    assert.equal(store.getKey('k'), undefined);
    // The same id can be created once the fleet is whole again.
    fleet.failing.clear();
    assert.equal((await create(registry, 'k')).versions[0]?.replicas.length, 3);
    store.close();
  });

  it('checks an RSA copy by a signature the copy makes, verified on the original public key', async () => {
    const { fleet, store, registry } = setUp({ a: 'z1', b: 'z2', c: 'z3' });
    fleet.corrupting.add('c');
    const key = await create(registry, 'rsa', 'RSA_2048', 'SIGN_VERIFY');
    assert.deepEqual(key.versions[0]?.replicas.slice().sort(), ['a', 'b'], 'the other key pair on c did not count');
    assert.equal(fleet.callsOf('sign', 'c').length, 1, 'c was asked to prove its copy');
    const signed = await registry.sign('rsa', Buffer.from('message'), 'RAW', 'RSASSA_PSS_SHA_256');
    assert.equal((await registry.verify('rsa', 0, Buffer.from('message'), 'RAW', signed.signature, 'RSASSA_PSS_SHA_256')).valid, true);
    store.close();
  });

  describe('repair of a missing replica', () => {
    it('copies the version from a reachable holder, checks it and records it', async () => {
      const { fleet, store, registry } = setUp();
      await create(registry, 'k');
      fleet.objects.get('c')?.clear();
      store.setReplica('k', 1, 'c', false, 0);
      await registry.replicateVersion('k', 1, 'c');
      assert.deepEqual(fleet.labelsOn('c'), ['hsmb:k:1']);
      assert.deepEqual(store.getKey('k')?.versions[0]?.replicas.slice().sort(), ['a', 'b', 'c']);
      assert.ok(fleet.callsOf('decrypt', 'c').length >= 1, 'the copy was proven by decrypting on it');
      store.close();
    });

    it('falls back to the next holder when the first cannot wrap', async () => {
      const { fleet, store, registry } = setUp();
      await create(registry, 'k');
      fleet.objects.get('c')?.clear();
      store.setReplica('k', 1, 'c', false, 0);
      fleet.failing.add('a');
      await registry.replicateVersion('k', 1, 'c');
      assert.equal(fleet.callsOf('wrapKey', 'a').length, 2, 'a was tried (once at creation, once now)');
      assert.equal(fleet.callsOf('wrapKey', 'b').length, 1, 'b served the copy');
      assert.ok(store.getKey('k')?.versions[0]?.replicas.includes('c'));
      store.close();
    });

    it('does not record a copy that does not match the original', async () => {
      const { fleet, store, registry } = setUp();
      await create(registry, 'k');
      fleet.objects.get('c')?.clear();
      store.setReplica('k', 1, 'c', false, 0);
      fleet.corrupting.add('c');
      // The damaged key fails the check (its decryption of the probe does not authenticate).
      await assert.rejects(registry.replicateVersion('k', 1, 'c'), BrokerError);
      assert.ok(!store.getKey('k')?.versions[0]?.replicas.includes('c'));
      store.close();
    });

    it('fails with NO_SOURCE when no holder is reachable, and with NOT_FOUND for an unknown key', async () => {
      const { fleet, store, registry } = setUp();
      await create(registry, 'k');
      store.setReplica('k', 1, 'c', false, 0);
      fleet.setAvailable('a', false);
      fleet.setAvailable('b', false);
      await assert.rejects(registry.replicateVersion('k', 1, 'c'), (error: unknown) => error instanceof BrokerError && error.reason === 'NO_SOURCE');
      await assert.rejects(registry.replicateVersion('nope', 1, 'c'), (error: unknown) => error instanceof BrokerError && error.reason === 'KEY_NOT_FOUND');
      store.close();
    });
  });
});
