import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { SqliteKeyStore } from './sqlite-key-store.js';

describe('SqliteKeyStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-store-'));
  const path = join(dir, 'broker.db');
  after(() => rmSync(dir, { recursive: true, force: true }));

  const newKey = (keyId: string) => ({
    keyId,
    keySpec: 'AES_256' as const,
    keyUsage: 'ENCRYPT_DECRYPT' as const,
    description: 'd',
    labels: { team: 'x' },
    createdAt: 1000,
    publicKey: undefined,
    replicas: ['a', 'b'],
    rotationPeriodDays: 0,
    nextRotationTime: undefined,
  });

  it('returns what was written, even after reads were cached', () => {
    const store = new SqliteKeyStore(path);
    try {
      store.createKey(newKey('k1'));
      assert.equal(store.getKey('k1')?.primaryVersion, 1);
      store.addVersion('k1', 2, 2000, undefined, ['a']);
      assert.equal(store.getKey('k1')?.primaryVersion, 2);
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
      assert.throws(() => store.addVersion('k1', 5, 1, undefined, []), (error: unknown) => error instanceof BrokerError && error.code === Code.ABORTED);
      assert.throws(() => store.createKey(newKey('k1')), (error: unknown) => error instanceof BrokerError && error.code === Code.ALREADY_EXISTS);
      store.setMeta('fleet_kek_id', 'kek-1');
    } finally {
      store.close();
    }
  });

  it('keeps everything across a reopen, and deletes whole keys', () => {
    const store = new SqliteKeyStore(path);
    try {
      const key = store.getKey('k1');
      assert.equal(key?.primaryVersion, 2);
      assert.deepEqual(key?.labels, { team: 'x' });
      assert.equal(store.getMeta('fleet_kek_id'), 'kek-1');
      assert.deepEqual([...store.replicaCounts()].sort(), [['a', 1], ['b', 1], ['c', 1]]);
      store.deleteKey('k1');
      assert.equal(store.getKey('k1'), undefined);
      assert.deepEqual([...store.replicaCounts()], []);
    } finally {
      store.close();
    }
  });

  it('pages keys in id order', () => {
    const store = new SqliteKeyStore(path);
    try {
      for (const id of ['b', 'a', 'c']) store.createKey(newKey(id));
      assert.deepEqual(store.listKeys(undefined, 2).map((key) => key.keyId), ['a', 'b']);
      assert.deepEqual(store.listKeys('b', 2).map((key) => key.keyId), ['c']);
    } finally {
      store.close();
    }
  });
});
