import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { testDatabase } from '@hsm-broker/keys';
import type { TestDatabase } from '@hsm-broker/keys';
import { KeySpec, KeyUsage } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { parseScrape, scrape } from './testing/prometheus-text.js';

// The admin listener of a broker on PostgreSQL while the database stalls:
// another session holds every key table locked, so each statement waits
// until its timeout. /readyz and /metrics must still answer at once, and
// the event loop must keep turning, so the gRPC calls on cached keys go on.

const aes = { keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 };

/** The longest the event loop was late for a 10 ms timer while `body` ran. */
async function longestStall(body: () => Promise<void>): Promise<number> {
  let longest = 0;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    longest = Math.max(longest, now - last - 10);
    last = now;
  }, 10);
  try {
    await body();
  } finally {
    clearInterval(timer);
  }
  return longest;
}

describe('admin listener on a stalled PostgreSQL store', { timeout: 300_000 }, () => {
  let db: TestDatabase;
  let t: TestBroker;
  let blocker: pg.Client;

  before(async () => {
    db = await testDatabase();
    // Background work stays out of the way: what is measured is the admin listener.
    t = await startTestBroker({ env: { HSMB_STORE: db.url }, config: { reconcileIntervalSeconds: 3600, deletionSweepSeconds: 3600 } });
    blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
  });

  after(async () => {
    await blocker.end().catch(() => undefined);
    await t.dispose();
    await db.dispose();
  });

  it('answers /readyz (not ready, saying why) and /metrics (last values, with their age) without holding the event loop', async () => {
    const admin = t.broker.adminAddress;
    assert.ok(admin);
    await t.clients.keys.createKey({ ...aes, keyId: 'stall/k1' });
    // Read once, so the key is cached as it would be under traffic.
    await t.clients.crypto.encrypt({ keyId: 'stall/k1', plaintext: Buffer.from('warm'), encryptionContext: {} });
    // Leadership and the start-up reconciliation have run once a replica leads.
    while (!t.broker.leadership.isLeader) await new Promise((resolve) => setTimeout(resolve, 100));
    await t.broker.reconciler.reconcile([]);
    const ready = await fetch(`http://${admin}/readyz`);
    assert.equal(ready.status, 200);
    const before = await scrape(admin);
    assert.equal(before.sum('hsmb_keys', { state: 'ENABLED' }), 1);

    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE keys, key_versions, key_replicas, fleet_meta IN ACCESS EXCLUSIVE MODE');
    let readiness: { ready: boolean; checks: { metadataStore: { ok: boolean; error?: string; ageMs?: number } } } | undefined;
    let readyStatus = 0;
    let during: ReturnType<typeof parseScrape> | undefined;
    const stalled = await longestStall(async () => {
      // Past the freshness window, so both must ask the stalled database.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const started = Date.now();
      const [readyResponse, metricsResponse] = await Promise.all([fetch(`http://${admin}/readyz`), fetch(`http://${admin}/metrics`)]);
      readyStatus = readyResponse.status;
      readiness = (await readyResponse.json()) as typeof readiness;
      during = parseScrape(await metricsResponse.text());
      assert.ok(Date.now() - started < 2500, `admin answers took ${String(Date.now() - started)} ms`);
      // Crypto on a cached key keeps going while the watchers wait.
      const sealed = await t.clients.crypto.encrypt({ keyId: 'stall/k1', plaintext: Buffer.from('stall'), encryptionContext: {} });
      assert.ok(sealed.ciphertext.length > 0);
    });
    await blocker.query('ROLLBACK');

    assert.ok(stalled < 500, `the event loop stalled for ${String(stalled)} ms`);
    assert.equal(readyStatus, 503);
    assert.equal(readiness?.ready, false);
    assert.equal(readiness?.checks.metadataStore.ok, false);
    assert.match(readiness?.checks.metadataStore.error ?? '', /key store has not answered for \d+ ms/);
    assert.ok((readiness?.checks.metadataStore.ageMs ?? 0) >= 1000);
    assert.equal(during?.sum('hsmb_keys', { state: 'ENABLED' }), 1, 'the last key count is still served');
    assert.ok((during?.sum('hsmb_key_store_answer_age_seconds') ?? 0) >= 1, 'and says how old it is');

    // Ready again once the database answers.
    let again = 0;
    for (let i = 0; i < 50 && again !== 200; i++) {
      again = (await fetch(`http://${admin}/readyz`)).status;
      if (again !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(again, 200);
  });
});
