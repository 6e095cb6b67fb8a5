import assert from 'node:assert/strict';
import { sign as signWithNode, constants, createPrivateKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { KeyRegistry } from './key-registry.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
import { InMemoryFleet } from './testing/in-memory-fleet.js';

const dayMs = 24 * 60 * 60 * 1000;
const message = Buffer.from('message');

interface Setup {
  fleet: InMemoryFleet;
  store: SqliteKeyStore;
  registry: KeyRegistry;
  clock: { now: number };
}

/**
 * A registry over an in-memory fleet. With `silentStore` the store announces
 * no change (as a shared store between a write and its notification): what
 * the registry sees then comes only from its own invalidation.
 */
async function setUp(silentStore = false): Promise<Setup> {
  const fleet = new InMemoryFleet({ a: 'z1', b: 'z2' });
  const store = new SqliteKeyStore(':memory:');
  if (silentStore) store.onKeyChanged = () => () => undefined;
  const clock = { now: 1_000_000 };
  const registry = new KeyRegistry({ fleet, store, durability: { minAppliances: 2, minZones: 2 }, enrolled: () => new Set(['a', 'b']), clock: () => clock.now });
  await registry.createKey({ keyId: 'rsa', keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', description: '', labels: {}, rotationPeriodDays: 0 });
  return { fleet, store, registry, clock };
}

/** A PSS signature made with the private key appliance a holds for `label`. */
function signedBy(fleet: InMemoryFleet, label: string): Buffer {
  const material = fleet.objects.get('a')?.get(label)?.material;
  assert.ok(material, `${label} is on a`);
  const key = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
  return signWithNode('sha256', message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
}

const rejectedAs = (reason: string) => (error: unknown): boolean => error instanceof BrokerError && error.reason === reason;

for (const silentStore of [false, true]) {
  describe(`cached keys for Verify and GetPublicKey (${silentStore ? 'changes made here, store silent' : 'store announcing changes'})`, () => {
    it('serve the new primary version right after a rotation', async () => {
      const { fleet, registry } = await setUp(silentStore);
      const first = registry.getPublicKey('rsa', 0);
      assert.equal(first.keyVersion, 1);
      assert.equal((await registry.verify('rsa', 0, message, 'RAW', signedBy(fleet, 'hsmb:rsa:1'), 'RSASSA_PSS_SHA_256')).valid, true);
      await registry.rotateKey('rsa');
      const second = registry.getPublicKey('rsa', 0);
      assert.equal(second.keyVersion, 2);
      assert.ok(!second.publicKey.equals(first.publicKey));
      const verified = await registry.verify('rsa', 0, message, 'RAW', signedBy(fleet, 'hsmb:rsa:2'), 'RSASSA_PSS_SHA_256');
      assert.deepEqual({ valid: verified.valid, keyVersion: verified.keyVersion }, { valid: true, keyVersion: 2 });
      assert.equal((await registry.verify('rsa', 1, message, 'RAW', signedBy(fleet, 'hsmb:rsa:1'), 'RSASSA_PSS_SHA_256')).valid, true, 'version 1 still verifies');
    });

    it('refuse a key as soon as it is disabled, and serve it again once enabled', async () => {
      const { fleet, registry } = await setUp(silentStore);
      const signature = signedBy(fleet, 'hsmb:rsa:1');
      assert.equal((await registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256')).valid, true);
      await registry.disableKey('rsa');
      await assert.rejects(registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256'), rejectedAs('KEY_DISABLED'));
      assert.throws(() => registry.getPublicKey('rsa', 0), rejectedAs('KEY_DISABLED'));
      await registry.enableKey('rsa');
      assert.equal((await registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256')).valid, true);
    });

    it('refuse a key pending deletion, and an unknown one once it is destroyed', async () => {
      const { fleet, registry, clock } = await setUp(silentStore);
      const signature = signedBy(fleet, 'hsmb:rsa:1');
      assert.equal(registry.getPublicKey('rsa', 1).keyVersion, 1);
      await registry.scheduleKeyDeletion('rsa', 7);
      await assert.rejects(registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256'), rejectedAs('KEY_PENDING_DELETION'));
      clock.now += 8 * dayMs;
      assert.deepEqual((await registry.destroyDueKeys()).done, ['rsa']);
      assert.deepEqual([fleet.labelsOn('a'), fleet.labelsOn('b')], [[], []]);
      await assert.rejects(registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256'), rejectedAs('KEY_NOT_FOUND'));
      assert.throws(() => registry.getPublicKey('rsa', 0), rejectedAs('KEY_NOT_FOUND'));
    });
  });
}

describe('cached keys and changes made by another broker', () => {
  it('see a change another broker made once the store announces it', async () => {
    const { fleet, store, registry } = await setUp();
    const signature = signedBy(fleet, 'hsmb:rsa:1');
    assert.equal((await registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256')).valid, true);
    // Written straight to the store, as another replica sharing it would.
    store.setState('rsa', 'DISABLED', undefined);
    await assert.rejects(registry.verify('rsa', 0, message, 'RAW', signature, 'RSASSA_PSS_SHA_256'), rejectedAs('KEY_DISABLED'));
    store.setState('rsa', 'ENABLED', undefined);
    store.updateSettings('rsa', { minDecryptionVersion: 1 });
    store.deleteKey('rsa');
    assert.throws(() => registry.getPublicKey('rsa', 0), rejectedAs('KEY_NOT_FOUND'));
  });
});
