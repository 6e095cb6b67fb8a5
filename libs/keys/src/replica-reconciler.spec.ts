import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyRegistry } from './key-registry.js';
import { ReplicaReconciler } from './replica-reconciler.js';
import type { ReconcileTrigger } from './replica-reconciler.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
import { InMemoryFleet } from './testing/in-memory-fleet.js';

interface Setup {
  fleet: InMemoryFleet;
  store: SqliteKeyStore;
  reconciler: ReplicaReconciler;
  enrolled: Set<string>;
  runs: ReconcileTrigger[];
}

/** Three enrolled appliances in three zones holding AES keys `k1` and `k2`. */
async function setUp(): Promise<Setup> {
  const fleet = new InMemoryFleet({ a: 'z1', b: 'z2', c: 'z3' });
  const store = new SqliteKeyStore(':memory:');
  const enrolled = new Set(['a', 'b', 'c']);
  const registry = new KeyRegistry({ fleet, store, durability: { minAppliances: 2, minZones: 2 }, enrolled: () => enrolled });
  for (const keyId of ['k1', 'k2']) {
    await registry.createKey({ keyId, keySpec: 'AES_256', keyUsage: 'ENCRYPT_DECRYPT', description: '', labels: {}, rotationPeriodDays: 0 });
  }
  const reconciler = new ReplicaReconciler({ fleet, store, registry, enrolled, log: () => undefined, clock: () => 5000 });
  const runs: ReconcileTrigger[] = [];
  reconciler.onReconciled((trigger) => runs.push(trigger));
  return { fleet, store, reconciler, enrolled, runs };
}

const replicasOf = (store: SqliteKeyStore, keyId: string): string[] => store.getKey(keyId)?.versions[0]?.replicas.slice().sort() ?? [];

/** Resolves once the reconciler has finished `count` runs. */
async function settled(runs: readonly unknown[], count: number): Promise<void> {
  for (let waited = 0; runs.length < count; waited++) {
    assert.ok(waited < 200, `reconciliation runs: ${String(runs.length)} of ${String(count)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('ReplicaReconciler', () => {
  it('changes nothing on a fleet that holds what the registry says', async () => {
    const { fleet, store, reconciler } = await setUp();
    const report = await reconciler.reconcile();
    assert.deepEqual({ ...report, failures: report.failures.length }, { appliancesChecked: 3, copied: 0, lost: 0, orphans: [], failures: 0, enrolled: [] });
    assert.equal(fleet.callsOf('unwrapKey').length, 4, 'only the copies made at creation');
    store.close();
  });

  it('forgets a replica an appliance lost and copies it back from a holder', async () => {
    const { fleet, store, reconciler } = await setUp();
    fleet.objects.get('b')?.delete('hsmb:k1:1');
    const report = await reconciler.reconcile();
    assert.equal(report.lost, 1);
    assert.equal(report.copied, 1);
    assert.deepEqual(fleet.labelsOn('b'), ['hsmb:k1:1', 'hsmb:k2:1']);
    assert.deepEqual(replicasOf(store, 'k1'), ['a', 'b', 'c']);
    assert.equal(reconciler.inventory('b')?.missing, 0);
    assert.equal(reconciler.inventory('b')?.reconciledAt, 5000);
    store.close();
  });

  it('keeps a lost replica out of routing while no holder can give a copy', async () => {
    const { fleet, store, reconciler } = await setUp();
    fleet.objects.get('c')?.delete('hsmb:k2:1');
    fleet.failing.add('a');
    fleet.failing.add('b');
    const report = await reconciler.reconcile(['c']);
    assert.equal(report.lost, 1);
    assert.equal(report.copied, 0);
    assert.equal(report.failures.length, 1);
    assert.match(report.failures[0] ?? '', /^c: hsmb:k2:1: /);
    assert.deepEqual(replicasOf(store, 'k2'), ['a', 'b'], 'no traffic goes to c for k2');
    assert.equal(reconciler.inventory('c')?.missing, 1);
    // Once a holder answers again the next run repairs it.
    fleet.failing.clear();
    assert.equal((await reconciler.reconcile(['c'])).copied, 1);
    assert.deepEqual(replicasOf(store, 'k2'), ['a', 'b', 'c']);
    store.close();
  });

  it('reports objects the registry does not know and leaves them in place', async () => {
    const { fleet, store, reconciler } = await setUp();
    fleet.objects.get('a')?.set('hsmb:stray:1', { spec: 'AES_256', material: Buffer.alloc(32) });
    const report = await reconciler.reconcile();
    assert.deepEqual(report.orphans, ['a:hsmb:stray:1']);
    assert.deepEqual(reconciler.inventory('a')?.orphans, ['hsmb:stray:1']);
    assert.ok(fleet.labelsOn('a').includes('hsmb:stray:1'));
    assert.deepEqual(fleet.callsOf('destroyKey'), []);
    store.close();
  });

  it('skips appliances out of service and those not enrolled', async () => {
    const { fleet, store, reconciler, enrolled } = await setUp();
    fleet.setAvailable('a', false);
    enrolled.delete('b');
    const report = await reconciler.reconcile();
    assert.equal(report.appliancesChecked, 1);
    assert.deepEqual(fleet.callsOf('listKeys').map((call) => call.applianceId), ['c']);
    store.close();
  });

  it('takes a vanished replica out of routing at once and repairs it in the background, held back while paused', async () => {
    const { fleet, store, reconciler, runs } = await setUp();
    reconciler.pause();
    fleet.objects.get('a')?.delete('hsmb:k1:1');
    reconciler.replicaMissing('a', 'hsmb:k1:1');
    assert.deepEqual(replicasOf(store, 'k1'), ['b', 'c'], 'out of routing before any repair');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(runs, [], 'no run while paused');
    reconciler.resume();
    await settled(runs, 1);
    assert.deepEqual(runs, ['resumed']);
    assert.deepEqual(replicasOf(store, 'k1'), ['a', 'b', 'c']);
    assert.deepEqual(fleet.labelsOn('a'), ['hsmb:k1:1', 'hsmb:k2:1']);
    store.close();
  });

  it('trusts nothing on a replaced token: forgets its replicas and its enrollment', async () => {
    const { store, reconciler, enrolled } = await setUp();
    reconciler.pause();
    reconciler.tokenReplaced('b');
    assert.ok(!enrolled.has('b'));
    assert.deepEqual(replicasOf(store, 'k1'), ['a', 'c']);
    assert.deepEqual(replicasOf(store, 'k2'), ['a', 'c']);
    store.close();
  });

  it('runs one reconciliation at a time, queueing the next', async () => {
    const { fleet, store, reconciler } = await setUp();
    let release = (): void => undefined;
    fleet.holds.set('a', new Promise((resolve) => (release = resolve)));
    const both = Promise.all([reconciler.reconcile(['a']), reconciler.reconcile(['b'])]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(fleet.callsOf('listKeys').map((call) => call.applianceId), ['a'], 'b waits while a is being reconciled');
    release();
    const [first, second] = await both;
    assert.equal(first.appliancesChecked, 1);
    assert.equal(second.appliancesChecked, 1);
    assert.deepEqual(fleet.callsOf('listKeys').map((call) => call.applianceId), ['a', 'b']);
    store.close();
  });
});
