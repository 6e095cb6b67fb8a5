import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { objectLabel } from '@hsm-broker/keys';
import type { ReconcileReport, ReconcileTrigger, SweepReport } from '@hsm-broker/keys';
import { FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { recordRoutedCalls } from './testing/routed-calls.js';
import type { RoutedCallRecorder } from './testing/routed-calls.js';

const day = 24 * 60 * 60 * 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error: unknown) {
    return error as ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

describe('background work and durability rules on a 3x1 fleet', { timeout: 900_000 }, () => {
  let t: TestBroker;
  let routed: RoutedCallRecorder;
  let now = Date.now();
  const runs: { trigger: ReconcileTrigger; report: ReconcileReport }[] = [];
  const sweeps: { kind: 'deletion' | 'rotation'; report: SweepReport }[] = [];

  before(async () => {
    t = await startTestBroker({
      env: { HSMB_FAULT_INJECTION: '1', HSMB_WORKERS_PER_APPLIANCE: '1' },
      // Timers every 2 s; the injectable clock decides what is due.
      config: { reconcileIntervalSeconds: 2, deletionSweepSeconds: 1, timeouts: { callMs: 3000 }, routing: { openMs: 200, maxOpenMs: 1000, healthIntervalMs: 200, probeTimeoutMs: 1000 } },
      clock: () => now,
      beforeReconcile: (reconciler) =>
        reconciler.onReconciled((trigger, report) => runs.push({ trigger, report })),
    });
    t.broker.onSweep((kind, report) => sweeps.push({ kind, report }));
    routed = recordRoutedCalls(t.broker.fleet);
  });

  after(async () => {
    await t.dispose();
  });

  it('reconciles at start-up and then on its interval', async () => {
    await until(() => runs.some((run) => run.trigger === 'start-up'), 30_000, 'the start-up run');
    const startUp = runs.find((run) => run.trigger === 'start-up');
    assert.equal(startUp?.report.appliancesChecked, 3, 'the start-up run checked every appliance');
    await until(() => runs.filter((run) => run.trigger === 'interval').length >= 2, 30_000, 'two interval runs');
  });

  it('reconciles when an appliance answers that a key object is missing, and repairs the replica', async () => {
    await t.clients.keys.createKey({ keyId: 'bg/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    const label = objectLabel('bg/ec', 1);
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-c1' });
    try {
      // Right after an interval run, so the next one is seconds away and cannot find the loss first.
      const intervals = runs.filter((run) => run.trigger === 'interval').length;
      await until(() => runs.filter((run) => run.trigger === 'interval').length > intervals, 30_000, 'an interval run');
      const seen = runs.length;
      await t.broker.fleet.executeOn('hsm-b1', 'destroyKey', { label });
      const sign = { keyId: 'bg/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };
      const refused = await refusal(t.clients.crypto.sign(sign));
      assert.equal(refused.metadata.get('hsmb-reason')[0], 'KEY_OBJECT_MISSING', refused.details);
      await until(() => runs.slice(seen).some((run) => run.trigger === 'key-missing'), 30_000, 'a key-missing run');
      assert.equal(runs.slice(seen).find((run) => run.trigger !== 'key-missing' && run.report.lost > 0), undefined, 'no other run found the loss first');
      await until(() => t.broker.fleet.executeOn('hsm-b1', 'hasKey', { label }), 30_000, 'the replica to be repaired');
      assert.equal((await t.clients.crypto.sign(sign)).keyId, 'bg/ec');
    } finally {
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a1' });
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-c1' });
    }
  });

  it('never retries CreateKey blindly: an appliance fault during generation is one attempt, then an error', async () => {
    // Every appliance fails, so wherever the router sends the generation it fails, and a retry would show as a second attempt.
    for (const id of ['hsm-a1', 'hsm-b1', 'hsm-c1']) await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
    try {
      const since = Date.now();
      const refused = await refusal(
        t.clients.keys.createKey({ keyId: 'bg/once', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 }),
      );
      assert.equal(refused.code, status.UNAVAILABLE, refused.details);
      const generations = routed.startedSince(since, 'generateKey');
      assert.equal(generations.length, 1);
      assert.deepEqual(
        generations[0]?.attempts.map((attempt) => attempt.outcome),
        ['failed'],
        `one attempt, no second one elsewhere: ${JSON.stringify(generations[0]?.attempts)}`,
      );
      assert.equal(generations[0]?.attempts[0]?.reason, 'CKR_DEVICE_ERROR');
      assert.equal((await refusal(t.clients.keys.describeKey({ keyId: 'bg/once' }))).code, status.NOT_FOUND);
    } finally {
      await t.clients.fleet.clearFaults({ applianceId: '' });
      await until(() => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === 1), 30_000, 'the fleet to recover');
    }
    for (const id of ['hsm-a1', 'hsm-b1', 'hsm-c1']) {
      assert.deepEqual(await t.broker.fleet.executeOn(id, 'listKeys', { prefix: 'hsmb:bg/once' }), [], `nothing was generated on ${id}`);
    }
  });

  it('a RotateKey that misses the quorum destroys its copies and reports DURABILITY_QUORUM_NOT_MET', async () => {
    await t.clients.keys.createKey({ keyId: 'bg/rot', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    // b1 and c1 are drained (so version 2 is generated on a1) and fail every
    // call, but stay up: the quorum check before creating passes, and no copy can be made.
    t.broker.reconciler.pause();
    for (const id of ['hsm-b1', 'hsm-c1']) {
      await t.clients.fleet.drainAppliance({ applianceId: id });
      await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
    }
    try {
      const since = Date.now();
      const refused = await refusal(t.clients.keys.rotateKey({ keyId: 'bg/rot' }));
      assert.equal(refused.code, status.UNAVAILABLE);
      assert.equal(refused.metadata.get('hsmb-reason')[0], 'DURABILITY_QUORUM_NOT_MET', refused.details);
      assert.match(refused.details, /after replication: 1 appliance\(s\) in 1 zone\(s\)/);
      assert.deepEqual(routed.startedSince(since, 'generateKey')[0]?.answeredBy, 'hsm-a1', 'version 2 was made, on hsm-a1');
      assert.equal(await t.broker.fleet.executeOn('hsm-a1', 'hasKey', { label: objectLabel('bg/rot', 2) }), false, 'and destroyed again');
      assert.equal(await t.broker.fleet.executeOn('hsm-a1', 'hasKey', { label: objectLabel('bg/rot', 1) }), true, 'version 1 is untouched');
      assert.equal((await t.clients.keys.describeKey({ keyId: 'bg/rot' })).keyMetadata?.primaryVersion, 1);
    } finally {
      await t.clients.fleet.clearFaults({ applianceId: '' });
      for (const id of ['hsm-b1', 'hsm-c1']) await t.clients.fleet.undrainAppliance({ applianceId: id });
      t.broker.reconciler.resume();
      await until(() => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === 1), 30_000, 'the fleet to recover');
    }
    for (const id of ['hsm-b1', 'hsm-c1']) assert.equal(await t.broker.fleet.executeOn(id, 'hasKey', { label: objectLabel('bg/rot', 2) }), false, `no copy on ${id}`);
  });

  it('the timers sweep due deletions and rotations, as the injectable clock makes them due', async () => {
    await t.clients.keys.createKey({ keyId: 'bg/rotating', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 90 });
    await t.clients.keys.createKey({ keyId: 'bg/doomed', keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.scheduleKeyDeletion({ keyId: 'bg/doomed', pendingWindowDays: 7 });
    // Sweeps run (the timer fires) but nothing is due yet.
    const quiet = sweeps.length;
    await until(() => sweeps.slice(quiet).filter((sweep) => sweep.kind === 'deletion').length >= 2, 30_000, 'two quiet sweeps');
    assert.ok(sweeps.slice(quiet).every((sweep) => sweep.report.done.length === 0 && sweep.report.failures.length === 0), JSON.stringify(sweeps.slice(quiet)));
    now += 91 * day;
    await until(() => sweeps.some((sweep) => sweep.kind === 'deletion' && sweep.report.done.includes('bg/doomed')), 30_000, 'the deletion sweep to destroy bg/doomed');
    await until(() => sweeps.some((sweep) => sweep.kind === 'rotation' && sweep.report.done.includes('bg/rotating')), 60_000, 'the rotation sweep to rotate bg/rotating');
    assert.equal((await refusal(t.clients.keys.describeKey({ keyId: 'bg/doomed' }))).code, status.NOT_FOUND);
    for (const appliance of t.broker.fleet.appliances) {
      assert.equal(await t.broker.fleet.executeOn(appliance.id, 'hasKey', { label: objectLabel('bg/doomed', 1) }), false, `destroyed on ${appliance.id}`);
    }
    const rotated = await t.clients.keys.describeKey({ keyId: 'bg/rotating' });
    assert.equal(rotated.keyMetadata?.primaryVersion, 2);
    assert.equal(rotated.keyMetadata?.nextRotationTime?.getTime(), now + 90 * day);
    // Nobody called an RPC for these changes; the audit trail still has them.
    const { records } = await t.broker.audit.search({ identity: 'system', result: 'any' }, 100);
    const changes = records.map(({ entry }) => (entry.type === 'call' ? [entry.operation, entry.keyId, JSON.stringify(entry.after)] : []));
    assert.ok(changes.some(([operation, keyId, after]) => operation === 'ScheduledKeyDestruction' && keyId === 'bg/doomed' && after === '{"keyState":"DESTROYED"}'), JSON.stringify(changes));
    assert.ok(changes.some(([operation, keyId, after]) => operation === 'ScheduledKeyRotation' && keyId === 'bg/rotating' && (after ?? '').includes('"primaryVersion":2')), JSON.stringify(changes));
  });
});
