import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { reasonTrailer } from '@hsm-broker/errors';
import { storeReason, testDatabase } from '@hsm-broker/keys';
import type { TestDatabase } from '@hsm-broker/keys';
import { KeySpec, KeyUsage } from '@hsm-broker/proto';
import { statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { startReplicaSet } from './testing/replica-set.js';
import type { ReplicaSet } from './testing/replica-set.js';

const aes = { keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 };

/** Encrypts and decrypts in a loop on every replica, counting outcomes, until stopped. */
function cryptoLoad(replicas: TestBroker[], keyId: string) {
  const counts = { ok: 0, failed: 0, failures: [] as string[] };
  let running = true;
  const loops = replicas.map(async (replica, index) => {
    while (running) {
      try {
        const sealed = await replica.clients.crypto.encrypt({ keyId, plaintext: Buffer.from(`load ${String(index)}`), encryptionContext: {} });
        const opened = await replica.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} });
        assert.equal(Buffer.from(opened.plaintext).toString(), `load ${String(index)}`);
        counts.ok++;
      } catch (error: unknown) {
        counts.failed++;
        counts.failures.push(error instanceof Error ? error.message : String(error));
      }
    }
  });
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('PostgreSQL restarted under load', { timeout: 600_000 }, () => {
  let db: TestDatabase;
  let set: ReplicaSet;

  before(async () => {
    // This file stops and starts its server, so it has one of its own.
    db = await testDatabase({ privateServer: true });
    set = await startReplicaSet(2, db.url);
  });

  after(async () => {
    await set.dispose();
    await db.dispose();
  });

  it('fails calls that need the store with UNAVAILABLE, keeps crypto on cached keys working, and recovers when it returns', async () => {
    const [first, second] = set.replicas;
    const server = db.server;
    assert.ok(first && second && server);
    await first.clients.keys.createKey({ ...aes, keyId: 'outage/cached' });
    const load = cryptoLoad(set.replicas, 'outage/cached');
    while (load.counts.ok < 20) await new Promise((resolve) => setTimeout(resolve, 50));

    server.stopServer();
    const okBefore = load.counts.ok;
    for (const replica of set.replicas) {
      const refused = await statusOf(replica.clients.keys.createKey({ ...aes, keyId: 'outage/new' }));
      assert.equal(refused.code, status.UNAVAILABLE, refused.message);
      assert.deepEqual(refused.metadata[reasonTrailer], storeReason.unavailable);
      const listed = await statusOf(replica.clients.keys.listKeys({ pageSize: 10, pageToken: '' }));
      assert.equal(listed.code, status.UNAVAILABLE, listed.message);
    }
    // Cached keys keep serving while the database is down.
    while (load.counts.ok < okBefore + 40) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(load.counts.failed, 0, load.counts.failures.slice(0, 3).join('; '));

    const reloaded = set.replicas.map(
      (replica) =>
        new Promise<void>((resolve) => {
          const detach = replica.broker.store.onKeyChanged((keyId) => {
            if (keyId === undefined) {
              detach();
              resolve();
            }
          });
        }),
    );
    server.startServer();
    // Each replica listens again and drops its cache (it may have missed notifications).
    await Promise.all(reloaded);
    const created = await first.clients.keys.createKey({ ...aes, keyId: 'outage/new' });
    assert.equal(created.keyMetadata?.keyId, 'outage/new');
    await second.clients.crypto.encrypt({ keyId: 'outage/new', plaintext: Buffer.from('after'), encryptionContext: {} });
    const okAfter = load.counts.ok;
    while (load.counts.ok < okAfter + 20) await new Promise((resolve) => setTimeout(resolve, 50));
    await load.stop();
    assert.equal(load.counts.failed, 0, load.counts.failures.slice(0, 3).join('; '));
    console.log(`# ${String(load.counts.ok)} encrypt+decrypt round trips, none failed, across the restart`);
    // Background work found a leader again.
    while (!set.replicas.some((replica) => replica.broker.leadership.isLeader)) await new Promise((resolve) => setTimeout(resolve, 100));
  });
});
