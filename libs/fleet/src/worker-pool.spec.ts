import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import type { WorkerExit } from './appliance-worker.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import { WorkerPool } from './worker-pool.js';
import type { PooledWorker, WorkerPoolEvents } from './worker-pool.js';

/** A worker whose calls the test answers by hand. */
class HeldWorker implements PooledWorker {
  readonly pid = undefined;
  exited = false;
  serviceTimeMs: number;
  readonly sessions: number;
  readonly held: { op: WorkerOperation; answer: () => void }[] = [];
  readonly #settled: (() => void)[] = [];
  readonly #exit: ((exit: WorkerExit) => void)[] = [];

  constructor(serviceTimeMs: number, sessions = 1) {
    this.serviceTimeMs = serviceTimeMs;
    this.sessions = sessions;
  }

  get inFlight(): number {
    return this.held.length;
  }

  call<K extends WorkerOperation>(op: K, _args: WorkerArgs<K>): Promise<WorkerResult<K>> {
    return new Promise((resolve) => {
      const entry = {
        op,
        answer: () => {
          this.held.splice(this.held.indexOf(entry), 1);
          resolve(null as WorkerResult<K>);
          for (const listener of this.#settled) listener();
        },
      };
      this.held.push(entry);
    });
  }

  onExit(listener: (exit: WorkerExit) => void): void {
    this.#exit.push(listener);
  }

  onCallSettled(listener: () => void): void {
    this.#settled.push(listener);
  }

  setFaults(): void {
    // Not used by the pool tests.
  }

  kill(reason: string): void {
    this.exited = true;
    for (const listener of this.#exit) listener({ code: null, signal: 'SIGKILL', reason });
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const quiet: WorkerPoolEvents = { started: () => undefined, exited: () => undefined, startFailed: () => undefined, restarting: () => undefined };

async function pool(workers: HeldWorker[], depth = 4): Promise<WorkerPool> {
  const queue = [...workers];
  const created = new WorkerPool(
    {
      spec: { applianceId: 'hsm-q1', modulePath: '/fake', selector: {}, role: 'user', env: {}, startTimeoutMs: 1000 },
      size: workers.length,
      maxInFlightPerWorker: depth,
      factory: () => {
        const next = queue.shift();
        return next ? Promise.resolve(next) : Promise.reject(new Error('no more test workers'));
      },
      expectedLatencyMs: () => 0,
    },
    quiet,
  );
  await created.start();
  return created;
}

async function take(target: WorkerPool, deadline?: number): Promise<PooledWorker> {
  const acquired = target.acquire(deadline);
  return 'then' in acquired ? acquired : Promise.resolve(acquired);
}

describe('WorkerPool', () => {
  it('hands out the least loaded worker at once, without a promise, up to the pipeline depth', async () => {
    const [a, b] = [new HeldWorker(1), new HeldWorker(1)];
    const target = await pool([a, b], 2);
    const first = target.acquire(undefined);
    assert.ok(!('then' in first), 'a free slot is given synchronously');
    void first.call('probe', {}, 1000);
    const second = target.acquire(undefined) as PooledWorker;
    assert.notEqual(second, first, 'the idle worker goes first');
    void second.call('probe', {}, 1000);
    void (target.acquire(undefined) as PooledWorker).call('probe', {}, 1000);
    void (target.acquire(undefined) as PooledWorker).call('probe', {}, 1000);
    assert.deepEqual([a.inFlight, b.inFlight], [2, 2]);
    const waiting = take(target);
    const queued = target.acquire(Date.now() + 60_000);
    assert.ok('then' in queued, 'every slot taken: the call waits');
    // Refused when the pool stops.
    if ('then' in queued) queued.catch(() => undefined);
    a.held[0]?.answer();
    assert.equal(await waiting, a, 'a freed slot goes to the first waiter');
    await target.stop();
  });

  it('keeps a call in the queue when it would not finish before its deadline behind those in flight, and answers RESOURCE_EXHAUSTED in time', async () => {
    const worker = new HeldWorker(400);
    const target = await pool([worker], 32);
    void (target.acquire(undefined) as PooledWorker).call('sign', { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32) }, 5000);
    const startedAt = Date.now();
    // One call ahead at 400 ms each: a second fits 1 s, not 600 ms.
    assert.ok(!('then' in target.acquire(startedAt + 1000)));
    await assert.rejects(take(target, startedAt + 600), (error: unknown) => error instanceof BrokerError && error.reason === 'APPLIANCE_SATURATED');
    assert.ok(Date.now() < startedAt + 600, 'refused before the deadline');
    await target.stop();
  });

  it('counts a worker’s sessions: calls up to them start at once, later ones wait a round each', async () => {
    const worker = new HeldWorker(400, 4);
    const target = await pool([worker], 32);
    const sign = { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32) } as const;
    const startedAt = Date.now();
    // Three calls in flight on four sessions: a fourth starts at once even with a short deadline.
    for (let i = 0; i < 3; i++) void (target.acquire(undefined) as PooledWorker).call('sign', sign, 5000);
    const fourth = target.acquire(startedAt + 300);
    assert.ok(!('then' in fourth), 'a free session takes the call at once');
    void fourth.call('sign', sign, 5000);
    // Four in flight: a fifth waits one round of 400 ms; a 1 s deadline allows that, 600 ms does not.
    assert.ok(!('then' in target.acquire(startedAt + 1000)));
    await assert.rejects(take(target, startedAt + 600), (error: unknown) => error instanceof BrokerError && error.reason === 'APPLIANCE_SATURATED');
    await target.stop();
  });

  it('spreads calls by load per session', async () => {
    const [single, quad] = [new HeldWorker(1, 1), new HeldWorker(1, 4)];
    const target = await pool([single, quad], 16);
    for (let i = 0; i < 10; i++) void (target.acquire(undefined) as PooledWorker).call('probe', {}, 1000);
    assert.deepEqual([single.inFlight, quad.inFlight], [2, 8]);
    await target.stop();
  });

  it('passes over a worker busy with a slow call while another has room', async () => {
    const [a, b] = [new HeldWorker(1), new HeldWorker(1)];
    const target = await pool([a, b], 8);
    const slowWorker = target.acquire(undefined) as PooledWorker;
    target.trackSlow(slowWorker, slowWorker.call('generateKey', { spec: 'RSA_4096', label: 'big' }, 60_000));
    for (let i = 0; i < 3; i++) void (target.acquire(undefined) as PooledWorker).call('probe', {}, 1000);
    const other = slowWorker === a ? b : a;
    assert.equal(other.inFlight, 3, 'crypto calls went to the other worker');
    assert.equal(slowWorker.inFlight, 1);
    await target.stop();
  });

  it('fails the queue at once when the last worker exits, so callers go elsewhere', async () => {
    const worker = new HeldWorker(1);
    const target = await pool([worker], 1);
    void (target.acquire(undefined) as PooledWorker).call('probe', {}, 1000);
    const waiting = take(target, Date.now() + 60_000);
    worker.kill('test');
    await assert.rejects(waiting, (error: unknown) => error instanceof BrokerError && error.failureClass === 'appliance');
    await target.stop();
  });
});
