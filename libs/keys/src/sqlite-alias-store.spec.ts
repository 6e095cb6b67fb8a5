import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { aliasNamePattern, isReservedAlias } from './alias-store.js';
import { SqliteAliasStore } from './sqlite-alias-store.js';
import { SqliteKeyStore } from './sqlite-key-store.js';

describe('SqliteAliasStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-alias-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('shares the key database file without disturbing the key store, and survives reopening', () => {
    const path = join(dir, 'broker.db');
    const keys = new SqliteKeyStore(path);
    const aliases = new SqliteAliasStore(path);
    keys.createKey({ keyId: 'k1', keySpec: 'AES_256', keyUsage: 'ENCRYPT_DECRYPT', description: '', labels: {}, createdAt: 1, publicKey: undefined, replicas: ['a'], rotationPeriodDays: 0, nextRotationTime: undefined });
    aliases.createAlias('alias/one', 'k1', 10);
    aliases.close();
    keys.close();
    const reopenedKeys = new SqliteKeyStore(path);
    const reopened = new SqliteAliasStore(path);
    assert.equal(reopenedKeys.getKey('k1')?.keyId, 'k1');
    assert.deepEqual(reopened.getAlias('alias/one'), { aliasName: 'alias/one', targetKeyId: 'k1', createdAt: 10, updatedAt: 10 });
    reopened.close();
    reopenedKeys.close();
  });

  it('refuses a taken name, updates, lists by name and by key, and deletes', () => {
    const store = new SqliteAliasStore(join(dir, 'list.db'));
    store.createAlias('alias/b', 'k1', 1);
    store.createAlias('alias/a', 'k2', 1);
    store.createAlias('alias/c', 'k1', 1);
    assert.throws(() => store.createAlias('alias/a', 'k1', 2), (error: unknown) => error instanceof BrokerError && error.reason === 'ALIAS_EXISTS');
    assert.deepEqual(store.listAliases(undefined, 10).map((alias) => alias.aliasName), ['alias/a', 'alias/b', 'alias/c']);
    assert.deepEqual(store.listAliases('alias/a', 1).map((alias) => alias.aliasName), ['alias/b']);
    assert.deepEqual(store.listAliases(undefined, 10, 'k1').map((alias) => alias.aliasName), ['alias/b', 'alias/c']);
    assert.equal(store.updateAlias('alias/a', 'k3', 5).targetKeyId, 'k3');
    assert.throws(() => store.updateAlias('alias/zz', 'k3', 5), (error: unknown) => error instanceof BrokerError && error.reason === 'ALIAS_NOT_FOUND');
    assert.equal(store.deleteAlias('alias/a'), true);
    assert.equal(store.deleteAlias('alias/a'), false);
    assert.equal(store.getAlias('alias/a'), undefined);
    store.close();
  });

  it('knows the alias syntax and the reserved space', () => {
    assert.ok(aliasNamePattern.test('alias/payments/tokens_v2-a'));
    assert.ok(!aliasNamePattern.test('alias/'));
    assert.ok(!aliasNamePattern.test('alias/with space'));
    assert.ok(!aliasNamePattern.test('payments'));
    assert.ok(isReservedAlias('alias/aws/s3'));
    assert.ok(!isReservedAlias('alias/awsome'));
  });
});
