import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { Appliance } from './appliance.js';
import { ApplianceWorker } from './appliance-worker.js';
import type { WorkerSpec } from './appliance-worker.js';

// Real worker processes and pipes; the token is the in-memory one of
// worker-test-main.ts.

const testEntry = new URL('./worker-test-main.js', import.meta.url);

function spec(applianceId: string, sessions = 1): WorkerSpec {
  return { applianceId, modulePath: '/nonexistent', selector: {}, role: 'user', env: {}, startTimeoutMs: 10_000, entry: testEntry, sessions };
}

function appliance(id: string, workers: number, sessionsPerWorker = 1): Appliance {
  return new Appliance(
    { id, zone: 'az-t', modulePath: '/nonexistent', selector: {}, userPin: 'unused', env: {}, workers, sessionsPerWorker },
    { callMs: 400, slowCallMs: 5000, startMs: 10_000 },
    {
      breaker: { consecutiveFailures: 1000, errorThresholdPercentage: 100, volumeThreshold: 1000, rollingWindowMs: 10_000, openMs: 1000, maxOpenMs: 1000 },
      slowStartMs: 0,
    },
    { workerFactory: (workerSpec) => ApplianceWorker.start({ ...workerSpec, entry: testEntry }) },
  );
}

const digest = Buffer.alloc(32);
const sign = (target: Appliance, label: string): Promise<Buffer> => target.call('sign', { label, scheme: 'ecdsa', hash: 'sha256', digest }, {});

function retryableFault(error: unknown): boolean {
  return error instanceof BrokerError && error.failureClass === 'appliance';
}

async function until(condition: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('appliance workers over the pipe', () => {
  const started: Appliance[] = [];
  after(async () => {
    await Promise.all(started.map((target) => target.stop()));
  });

  it('serves many calls in flight on one process, each answer to its caller', async () => {
    const worker = await ApplianceWorker.start(spec('hsm-p1'));
    try {
      const labels = Array.from({ length: 500 }, (_, i) => `key-${String(i)}`);
      const results = await Promise.all(labels.map((label) => worker.call('sign', { label, scheme: 'ecdsa', hash: 'sha256', digest }, 5000)));
      assert.deepEqual(
        results.map((result) => result.toString().split('@')[0]),
        labels,
      );
      assert.equal(worker.inFlight, 0);
    } finally {
      await worker.stop();
    }
  });

  it('fails the calls in flight on a worker that dies mid-batch with a retryable fault; a new worker serves', async () => {
    const target = appliance('hsm-d1', 1);
    started.push(target);
    await target.start();
    const [pid] = target.workerPids;
    const batch = Array.from({ length: 30 }, (_, i) => sign(target, i === 15 ? 'die' : `key-${String(i)}`).then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    ));
    const outcomes = await Promise.all(batch);
    const failed = outcomes.filter((outcome) => !outcome.ok);
    assert.ok(failed.length >= 15, `the dying call and those behind it fail (${String(failed.length)} failed)`);
    for (const outcome of failed) assert.ok(!outcome.ok && retryableFault(outcome.error), String(!outcome.ok && outcome.error));
    await until(() => target.workerCount === 1 && target.workerPids[0] !== pid, 10_000);
    const answer = await sign(target, 'after');
    assert.match(answer.toString(), /^after@/u);
    assert.notEqual(answer.toString().split('@')[1], String(pid));
    assert.equal(target.stats.workerRestartsTotal, 1);
  });

  it('detects a hung call, kills its worker, fails the calls queued behind it retryably, and serves from a replacement', async () => {
    const target = appliance('hsm-h1', 1);
    started.push(target);
    await target.start();
    const [pid] = target.workerPids;
    const startedAt = Date.now();
    const hung = sign(target, 'hang');
    const behind = [sign(target, 'k1'), sign(target, 'k2')];
    await assert.rejects(hung, (error: unknown) => error instanceof BrokerError && error.reason === 'APPLIANCE_TIMEOUT' && retryableFault(error));
    assert.ok(Date.now() - startedAt >= 400, 'not before the hang limit');
    for (const call of behind) await assert.rejects(call, (error: unknown) => error instanceof BrokerError && error.reason === 'WORKER_EXITED' && retryableFault(error));
    await until(() => target.workerCount === 1 && target.workerPids[0] !== pid, 10_000);
    assert.match((await sign(target, 'again')).toString(), /^again@/u);
  });

  it('spreads calls over the workers of an appliance and keeps serving when one dies', async () => {
    const target = appliance('hsm-s1', 2);
    started.push(target);
    await target.start();
    const pids = new Set((await Promise.all(Array.from({ length: 64 }, (_, i) => sign(target, `k${String(i)}`)))).map((result) => result.toString().split('@')[1]));
    assert.equal(pids.size, 2, 'both processes served');
    const victim = target.workerPids[0] ?? 0;
    process.kill(victim, 'SIGKILL');
    await until(() => !target.workerPids.includes(victim), 5000);
    assert.match((await sign(target, 'still')).toString(), /^still@/u);
  });

  it('runs as many signs at once as the worker has sessions, and anything else alone', async () => {
    const worker = await ApplianceWorker.start(spec('hsm-c1', 4));
    try {
      assert.equal(worker.sessions, 4);
      const signs = Array.from({ length: 12 }, () => worker.call('sign', { label: 'slow:60', scheme: 'ecdsa', hash: 'sha256', digest }, 5000));
      const probe = worker.call('probe', {}, 5000);
      const more = Array.from({ length: 4 }, () => worker.call('sign', { label: 'slow:20', scheme: 'ecdsa', hash: 'sha256', digest }, 5000));
      const atOnce = (await Promise.all([...signs, ...more])).map((result) => Number(result.toString().split('@')[2]));
      assert.equal(Math.max(...atOnce), 4, `never more than the sessions at once (${atOnce.join(',')})`);
      assert.deepEqual(await probe, { serial: 'fake-serial@0' }, 'the probe ran with no sign beside it');
    } finally {
      await worker.stop();
    }
  });

  it('with several sessions, replaces a worker whose call hangs on one session while the others answer', async () => {
    const target = appliance('hsm-c2', 1, 4);
    started.push(target);
    await target.start();
    const [pid] = target.workerPids;
    const hung = sign(target, 'hang');
    const beside = await Promise.all(Array.from({ length: 6 }, () => sign(target, 'slow:20')));
    for (const result of beside) assert.match(result.toString(), /^slow:20@/u, 'the other sessions kept serving');
    await assert.rejects(hung, (error: unknown) => error instanceof BrokerError && error.reason === 'APPLIANCE_TIMEOUT' && retryableFault(error));
    await until(() => target.workerCount === 1 && target.workerPids[0] !== pid, 10_000);
    assert.match((await sign(target, 'again')).toString(), /^again@/u);
  });

  it('with several sessions, fails every call in flight retryably when the worker dies', async () => {
    const target = appliance('hsm-c3', 1, 4);
    started.push(target);
    await target.start();
    const batch = Array.from({ length: 8 }, (_, i) => sign(target, i === 2 ? 'die' : 'slow:200').then(
      () => 'answered',
      (error: unknown) => (retryableFault(error) ? 'retryable' : String(error)),
    ));
    const outcomes = await Promise.all(batch);
    assert.deepEqual(outcomes, Array.from({ length: 8 }, () => 'retryable'));
  });

  it('with several sessions, an injected latency holds each call on its session, not the process; an injected error fails the call alone', async () => {
    const worker = await ApplianceWorker.start(spec('hsm-c4', 4));
    try {
      worker.setFaults([{ kind: 'LATENCY', probability: 0, latencyMs: 300, expiresAt: undefined }]);
      // The faults message travels the IPC channel, the calls the pipe: give it a moment.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const startedAt = Date.now();
      await Promise.all(Array.from({ length: 4 }, () => worker.call('sign', { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest }, 5000)));
      const elapsed = Date.now() - startedAt;
      assert.ok(elapsed >= 300, `each call was held (${String(elapsed)} ms)`);
      assert.ok(elapsed < 1200, `the four were held side by side, not one after another (${String(elapsed)} ms)`);
      worker.setFaults([{ kind: 'ERROR', probability: 0, latencyMs: 0, expiresAt: undefined }]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await assert.rejects(worker.call('sign', { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest }, 5000), (error: unknown) => error instanceof BrokerError && /CKR_DEVICE_ERROR/u.test(error.message));
      worker.setFaults([]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.match((await worker.call('sign', { label: 'after', scheme: 'ecdsa', hash: 'sha256', digest }, 5000)).toString(), /^after@/u);
    } finally {
      await worker.stop();
    }
  });
});
