import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { WorkerExit, WorkerSpec } from './appliance-worker.js';
import { Fleet } from './fleet.js';
import type { FleetConfig } from './fleet-config.js';
import type { RoutedCall } from './routed-call.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import type { PooledWorker, WorkerFactory } from './worker-pool.js';

// Routing, retries and hedging over in-memory workers: no processes, no token.

type Behaviour = (op: WorkerOperation, args: unknown) => Promise<unknown>;

class FakeWorker implements PooledWorker {
  readonly pid = undefined;
  exited = false;
  inFlight = 0;
  serviceTimeMs = 0;
  readonly sessions: number;
  readonly #settled: (() => void)[] = [];
  readonly #behaviour: Behaviour;

  constructor(behaviour: Behaviour, sessions = 1) {
    this.#behaviour = behaviour;
    this.sessions = sessions;
  }

  async call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>): Promise<WorkerResult<K>> {
    this.inFlight++;
    try {
      return (await this.#behaviour(op, args)) as WorkerResult<K>;
    } finally {
      this.inFlight--;
      for (const listener of this.#settled) listener();
    }
  }

  onExit(_listener: (exit: WorkerExit) => void): void {
    // In-memory workers never exit.
  }

  onCallSettled(listener: () => void): void {
    this.#settled.push(listener);
  }

  setFaults(): void {
    // Faults act inside real worker processes only.
  }

  kill(): void {
    this.exited = true;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const describeResult = { token: { label: 't', serial: 's', manufacturer: 'm', model: 'fake', slotId: 0 }, mechanisms: ['CKM_ECDSA', 'CKM_AES_GCM'] };

/** A fleet whose appliance `id` behaves as `behaviours[id]` for crypto calls. */
function fleetOf(behaviours: Record<string, Behaviour>, routing: Partial<FleetConfig['routing']> = {}, sessionsPerWorker = 1): { fleet: Fleet; calls: Map<string, WorkerOperation[]> } {
  const calls = new Map<string, WorkerOperation[]>();
  const factory: WorkerFactory = (spec: WorkerSpec) =>
    Promise.resolve(
      new FakeWorker((op, args) => {
        if (op === 'describe') return Promise.resolve(describeResult);
        const seen = calls.get(spec.applianceId) ?? [];
        seen.push(op);
        calls.set(spec.applianceId, seen);
        return (behaviours[spec.applianceId] ?? (() => Promise.resolve(Buffer.from(spec.applianceId))))(op, args);
      }, spec.sessions ?? 1),
    );
  const zones: Record<string, string> = { a1: 'az-a', b1: 'az-b', c1: 'az-c' };
  const fleet = new Fleet({
    localZone: 'az-a',
    appliances: Object.keys(zones).map((id) => ({ id, zone: zones[id] ?? 'az-a', modulePath: '/fake', selector: {}, userPin: 'unused', env: {}, workers: 1, sessionsPerWorker })),
    timeouts: { callMs: 1000, slowCallMs: 5000, startMs: 1000 },
    routing: {
      zonePriority: ['az-b', 'az-c'],
      preferLocalZone: true,
      breaker: { consecutiveFailures: 100, errorThresholdPercentage: 100, volumeThreshold: 1000, rollingWindowMs: 10_000, openMs: 1000, maxOpenMs: 1000 },
      retryBudget: { ratio: 1, minPerSecond: 100, windowMs: 10_000 },
      maxAttempts: 3,
      hedgeDelayMs: 0,
      slowStartMs: 0,
      healthIntervalMs: 600_000,
      probeTimeoutMs: 1000,
      faultInjection: false,
      ...routing,
    },
    workerFactory: factory,
  });
  return { fleet, calls };
}

const fault = (): Promise<never> => Promise.reject(new BrokerError(Code.UNAVAILABLE, 'device error', { reason: 'CKR_DEVICE_ERROR', failureClass: 'appliance' }));
const signArgs = { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32) } as const;

describe('Fleet routing over in-memory workers', () => {
  let running: Fleet | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });

  async function started(setup: ReturnType<typeof fleetOf>): Promise<ReturnType<typeof fleetOf>> {
    running = setup.fleet;
    await setup.fleet.start();
    return setup;
  }

  it('serves from the local zone while it answers', async () => {
    const { fleet, calls } = await started(fleetOf({}));
    const executed = await fleet.execute('sign', signArgs);
    assert.equal(executed.applianceId, 'a1');
    assert.deepEqual([...calls.keys()], ['a1']);
  });

  it('keeps calls in the local zone up to its sessions, and only then spills to the next zone', async () => {
    const held: (() => void)[] = [];
    const hold: Behaviour = () => new Promise((resolve) => held.push(() => resolve(Buffer.from('a1'))));
    // Three calls at once: one session per zone's appliance spills them over the zones in order.
    for (const [sessions, expected] of [
      [1, ['a1', 'b1', 'c1']],
      [4, ['a1', 'a1', 'a1']],
    ] as const) {
      const { fleet } = await started(fleetOf({ a1: hold, b1: hold, c1: hold }, {}, sessions));
      const calls = Array.from({ length: 3 }, () => fleet.execute('sign', signArgs));
      await new Promise((resolve) => setImmediate(resolve));
      for (const release of held.splice(0)) release();
      const served = (await Promise.all(calls)).map((executed) => executed.applianceId);
      assert.deepEqual(served, expected, `${String(sessions)} session(s) per worker`);
      await fleet.stop();
      running = undefined;
    }
  });

  it('retries an idempotent call on the next zone after an appliance fault, and reports every attempt', async () => {
    const { fleet } = await started(fleetOf({ a1: fault }));
    const routed: RoutedCall[] = [];
    fleet.onCallRouted((call) => routed.push(call));
    const executed = await fleet.execute('sign', signArgs);
    assert.equal(executed.applianceId, 'b1');
    assert.deepEqual(
      routed[0]?.attempts.map((attempt) => [attempt.applianceId, attempt.outcome, attempt.reason]),
      [
        ['a1', 'failed', 'CKR_DEVICE_ERROR'],
        ['b1', 'answered', undefined],
      ],
    );
  });

  it('never retries key generation blindly', async () => {
    const { fleet, calls } = await started(fleetOf({ a1: fault }));
    await assert.rejects(fleet.execute('generateKey', { spec: 'AES_256', label: 'x' }), /device error/u);
    assert.deepEqual([...calls.keys()], ['a1']);
  });

  it('gives a caller error at once, without trying another appliance', async () => {
    const callerError = (): Promise<never> => Promise.reject(BrokerError.invalidArgument('digest', 'wrong length', 'INVALID_DIGEST'));
    const { fleet, calls } = await started(fleetOf({ a1: callerError }));
    await assert.rejects(fleet.execute('sign', signArgs), (error: unknown) => error instanceof BrokerError && error.reason === 'INVALID_DIGEST');
    assert.deepEqual([...calls.keys()], ['a1']);
  });

  it('stops after maxAttempts appliance faults with the last fault', async () => {
    const { fleet, calls } = await started(fleetOf({ a1: fault, b1: fault, c1: fault }, { maxAttempts: 2 }));
    await assert.rejects(fleet.execute('sign', signArgs), (error: unknown) => error instanceof BrokerError && error.reason === 'CKR_DEVICE_ERROR');
    assert.equal([...calls.values()].flat().length, 2);
  });

  it('skips appliances lacking the mechanism the catalog names for the arguments', async () => {
    const { fleet } = await started(fleetOf({}));
    // The fakes offer CKM_ECDSA and CKM_AES_GCM only: HMAC has nowhere to go.
    await assert.rejects(fleet.execute('generateMac', { label: 'm', hash: 'sha256', message: Buffer.alloc(1) }), (error: unknown) => error instanceof BrokerError && error.reason === 'NO_APPLIANCE_AVAILABLE');
  });

  it('hedges a slow hedgeable call onto a second appliance; the first answer wins', async () => {
    const slow = (): Promise<Buffer> => new Promise((resolve) => setTimeout(() => resolve(Buffer.from('a1')), 3000));
    const { fleet } = await started(fleetOf({ a1: slow }, { hedgeDelayMs: 30 }));
    const routed: RoutedCall[] = [];
    fleet.onCallRouted((call) => routed.push(call));
    const startedAt = Date.now();
    const executed = await fleet.execute('sign', signArgs);
    assert.equal(executed.applianceId, 'b1');
    assert.ok(Date.now() - startedAt < 2500, 'the hedge answered before the slow appliance');
    assert.deepEqual(
      routed[0]?.attempts.map((attempt) => [attempt.applianceId, attempt.hedge]),
      [
        ['a1', false],
        ['b1', true],
      ],
    );
  });

  it('does not hedge a call the catalog marks unhedgeable', async () => {
    const slow = (): Promise<boolean> => new Promise((resolve) => setTimeout(() => resolve(true), 150));
    const { fleet, calls } = await started(fleetOf({ a1: slow }, { hedgeDelayMs: 30 }));
    const executed = await fleet.execute('hasKey', { label: 'k' });
    assert.equal(executed.applianceId, 'a1');
    assert.deepEqual([...calls.keys()], ['a1']);
  });
});
