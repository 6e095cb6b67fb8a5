import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import pg from 'pg';
import { keyStoreBehaviour, newTestKey } from './key-store-behaviour.js';
import { PgKeyStore } from './pg-key-store.js';
import { storeReason } from './pg-store-failure.js';
import { testDatabase } from './testing/test-postgres.js';
import type { TestDatabase } from './testing/test-postgres.js';

describe('PgKeyStore', { timeout: 300_000 }, () => {
  let db: TestDatabase;
  before(async () => {
    db = await testDatabase();
  });
  after(async () => {
    await db.dispose();
  });

  describe('behaves like every key store', () => {
    keyStoreBehaviour(() => PgKeyStore.open(db.url));
  });

  it('answers a failing statement with a stable INTERNAL error, pg\'s text only in the log', async () => {
    const logged: { level: string; message: string; fields: Record<string, string> }[] = [];
    const store = await PgKeyStore.open(db.url, { log: (level, message, fields) => logged.push({ level, message, fields }) });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      store.createKey(newTestKey('broken'));
      // A schema that no longer matches the queries: every read of replicas fails in the database.
      await admin.query('ALTER TABLE key_replicas RENAME COLUMN verified_at TO checked_at');
      const failure = (() => {
        try {
          store.allKeys();
        } catch (error: unknown) {
          return error;
        }
        return undefined;
      })();
      assert.ok(failure instanceof BrokerError);
      assert.equal(failure.code, Code.INTERNAL);
      assert.equal(failure.reason, storeReason.failed);
      assert.equal(failure.message, 'key store failed (SQLSTATE 42703)');
      await assert.rejects(store.reads.allKeys(), (error: unknown) => error instanceof BrokerError && error.message === 'key store failed (SQLSTATE 42703)');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const entry = logged.find((line) => line.fields['during'] === 'allKeys');
      assert.equal(entry?.level, 'error');
      assert.equal(entry?.fields['code'], '42703');
      assert.match(entry?.fields['text'] ?? '', /verified_at/);
    } finally {
      await admin.query('ALTER TABLE key_replicas RENAME COLUMN checked_at TO verified_at').catch(() => undefined);
      await admin.end();
      store.close();
    }
  });

  it('calls no leadership listener after stop(), and gives the lock up so another replica leads', async () => {
    const [a, b] = await Promise.all([PgKeyStore.open(db.url, { leaseCheckMs: 100 }), PgKeyStore.open(db.url, { leaseCheckMs: 100 })]);
    try {
      const first = a.lead('stop-test a');
      await new Promise<void>((resolve) => first.onChange((leader) => leader && resolve()));
      const after: boolean[] = [];
      first.onChange((leader) => after.push(leader));
      first.stop();
      assert.equal(first.isLeader, false);
      assert.equal(first.term, 0);
      first.onChange((leader) => after.push(leader));
      const second = b.lead('stop-test b');
      await new Promise<void>((resolve) => second.onChange((leader) => leader && resolve()));
      assert.equal(second.isLeader, true);
      // Closing the stopped store's sessions reports nothing either.
      a.close();
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(after, []);
      second.stop();
    } finally {
      a.close();
      b.close();
    }
  });

  it('migrates once when replicas start together, and tells each replica of the others\' changes', async () => {
    const stores = await Promise.all([PgKeyStore.open(db.url), PgKeyStore.open(db.url), PgKeyStore.open(db.url)]);
    const [a, b, c] = stores;
    assert.ok(a && b && c);
    try {
      a.createKey(newTestKey('shared'));
      assert.equal(b.getKey('shared')?.keyState, 'ENABLED');
      const seen = new Promise<string | undefined>((resolve) => b.onKeyChanged((keyId) => keyId === 'shared' && resolve(keyId)));
      c.setState('shared', 'DISABLED', undefined);
      assert.equal(await seen, 'shared');
      // The cached ENABLED record was dropped by the notification, not by a timer.
      assert.equal(b.getKey('shared')?.keyState, 'DISABLED');
    } finally {
      for (const store of stores) store.close();
    }
  });

  it('serialises one key across replicas: racing rotations never make two primaries of one version', async () => {
    const [a, b] = await Promise.all([PgKeyStore.open(db.url), PgKeyStore.open(db.url)]);
    try {
      a.createKey(newTestKey('raced'));
      const order: string[] = [];
      const rotate = (store: PgKeyStore, name: string) =>
        store.exclusive('raced', async () => {
          order.push(`${name} in`);
          const key = store.getKey('raced');
          assert.ok(key);
          await new Promise((resolve) => setTimeout(resolve, 50));
          store.addVersion('raced', key.primaryVersion + 1, 2000, undefined, ['a']);
          order.push(`${name} out`);
        });
      await Promise.all([rotate(a, 'a'), rotate(b, 'b')]);
      assert.deepEqual(a.getKey('raced')?.versions.map((version) => version.version), [1, 2, 3]);
      // One held the lock while the other waited: no interleaving.
      assert.ok(order[0]?.endsWith('in') && order[1]?.endsWith('out') && order[0].charAt(0) === order[1].charAt(0), order.join(', '));
      // Without the lock, the version check in the row-locked transaction still refuses a stale rotation.
      assert.throws(() => b.addVersion('raced', 3, 3000, undefined, []), (error: unknown) => error instanceof BrokerError && error.code === Code.ABORTED);
    } finally {
      a.close();
      b.close();
    }
  });

  it('elects one leader at a time; the next takes over when the leader\'s session ends', async () => {
    const [a, b] = await Promise.all([PgKeyStore.open(db.url, { leaseCheckMs: 200 }), PgKeyStore.open(db.url, { leaseCheckMs: 200 })]);
    try {
      const leaderA = a.lead('a');
      const first = new Promise<number>((resolve) => leaderA.onChange((leader, term) => leader && resolve(term)));
      const termA = await first;
      const leaderB = b.lead('b');
      const taken = new Promise<number>((resolve) => leaderB.onChange((leader, term) => leader && resolve(term)));
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(leaderB.isLeader, false, 'two leaders at once');
      a.close();
      const termB = await taken;
      assert.ok(termB > termA, `terms ${String(termA)} then ${String(termB)}`);
    } finally {
      a.close();
      b.close();
    }
  });
});
