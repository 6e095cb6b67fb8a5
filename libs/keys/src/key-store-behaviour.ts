import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyStore, NewKey } from './key-store.js';

/** A key with version 1 on appliances a and b. */
export function newTestKey(keyId: string): NewKey {
  return {
    keyId,
    keySpec: 'AES_256',
    keyUsage: 'ENCRYPT_DECRYPT',
    description: 'd',
    labels: { team: 'x' },
    createdAt: 1000,
    publicKey: undefined,
    replicas: ['a', 'b'],
    rotationPeriodDays: 0,
    nextRotationTime: undefined,
  };
}

/**
 * The behaviour every KeyStore backend must have, as tests. `open` opens
 * the same (initially empty) store again each time it is called.
 * @internal
 */
export function keyStoreBehaviour(open: () => Promise<KeyStore>): void {
  it('returns what was written, even after reads were cached, and announces each change', async () => {
    const store = await open();
    const changed: (string | undefined)[] = [];
    store.onKeyChanged((keyId) => changed.push(keyId));
    try {
      store.createKey(newTestKey('k1'));
      assert.equal(store.getKey('k1')?.primaryVersion, 1);
      store.addVersion('k1', 2, 2000, Buffer.from('spki'), ['a']);
      assert.equal(store.getKey('k1')?.primaryVersion, 2);
      assert.ok(Buffer.isBuffer(store.getKey('k1')?.versions[1]?.publicKey));
      assert.equal(store.getKey('k1')?.versions[1]?.publicKey?.toString(), 'spki');
      assert.deepEqual(store.getKey('k1')?.versions.map((v) => v.replicas), [['a', 'b'], ['a']]);
      store.setReplica('k1', 2, 'c', true, 3000);
      assert.deepEqual(store.getKey('k1')?.versions[1]?.replicas, ['a', 'c']);
      assert.equal(store.getKey('k1')?.versions[1]?.replicaVerifiedAt['c'], 3000);
      store.setReplica('k1', 1, 'a', false, 3000);
      assert.deepEqual(store.getKey('k1')?.versions[0]?.replicas, ['b']);
      store.setState('k1', 'PENDING_DELETION', 9000);
      assert.equal(store.getKey('k1')?.keyState, 'PENDING_DELETION');
      assert.deepEqual(store.keysDueForDeletion(9000).map((key) => key.keyId), ['k1']);
      assert.deepEqual(store.keysDueForDeletion(8999), []);
      store.updateSettings('k1', { minDecryptionVersion: 2 });
      assert.equal(store.getKey('k1')?.minDecryptionVersion, 2);
      store.updateSettings('k1', { rotationPeriodDays: 90, nextRotationTime: 5000 });
      assert.deepEqual(store.keysDueForRotation(5000).map((key) => key.keyId), []);
      assert.throws(() => store.addVersion('k1', 5, 1, undefined, []), (error: unknown) => error instanceof BrokerError && error.code === Code.ABORTED);
      assert.throws(() => store.createKey(newTestKey('k1')), (error: unknown) => error instanceof BrokerError && error.code === Code.ALREADY_EXISTS && error.reason === 'KEY_EXISTS');
      assert.throws(() => store.setState('nope', 'DISABLED', undefined), (error: unknown) => error instanceof BrokerError && error.code === Code.NOT_FOUND);
      store.setMeta('fleet_kek_id', 'kek-1');
      store.setMeta('fleet_kek_id', 'kek-2');
      assert.ok(changed.length >= 7 && changed.every((keyId) => keyId === 'k1' || keyId === undefined), `changes announced: ${changed.join(',')}`);
    } finally {
      store.close();
    }
  });

  it('keeps everything across a reopen, and deletes whole keys', async () => {
    const store = await open();
    try {
      const key = store.getKey('k1');
      assert.equal(key?.primaryVersion, 2);
      assert.deepEqual(key?.labels, { team: 'x' });
      assert.equal(store.getMeta('fleet_kek_id'), 'kek-2');
      assert.equal(store.getMeta('absent'), undefined);
      assert.deepEqual([...store.replicaCounts()].sort(), [['a', 1], ['b', 1], ['c', 1]]);
      store.deleteKey('k1');
      assert.equal(store.getKey('k1'), undefined);
      assert.deepEqual([...store.replicaCounts()], []);
    } finally {
      store.close();
    }
  });

  it('pages keys in id order and imports records exactly', async () => {
    const store = await open();
    try {
      for (const id of ['b', 'a', 'c']) store.createKey(newTestKey(id));
      assert.deepEqual(store.listKeys(undefined, 2).map((key) => key.keyId), ['a', 'b']);
      assert.deepEqual(store.listKeys('b', 2).map((key) => key.keyId), ['c']);
      const original = store.getKey('a');
      assert.ok(original);
      const imported = store.importKey({ ...original, keyId: 'a-copy', keyState: 'DISABLED' });
      assert.deepEqual({ ...imported, keyId: 'a' }, { ...original, keyState: 'DISABLED' });
      assert.throws(() => store.importKey(original), (error: unknown) => error instanceof BrokerError && error.code === Code.ALREADY_EXISTS);
      assert.deepEqual(store.allKeys().map((key) => key.keyId), ['a', 'a-copy', 'b', 'c']);
    } finally {
      store.close();
    }
  });
}
