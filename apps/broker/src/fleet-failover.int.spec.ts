import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import type { RoutedCall } from '@hsm-broker/fleet';
import { FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { recordRoutedCalls } from './testing/routed-calls.js';
import type { RoutedCallRecorder } from './testing/routed-calls.js';

// These tests assert on routing events and counts (which appliance answered,
// which were tried, whether a breaker opened, whether any call failed),
// never on how long something took: the machine may be busy with anything.

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Fast breakers and probes so rehearsals finish in seconds. The hang and
 * probe limits stay generous: on a loaded machine a healthy call can take
 * hundreds of milliseconds, and a limit it crosses would fail it for real.
 */
const quickRecovery = {
  timeouts: { callMs: 3000 },
  routing: { openMs: 300, maxOpenMs: 2000, healthIntervalMs: 100, probeTimeoutMs: 1000, slowStartMs: 500, consecutiveFailures: 3 },
};

/**
 * Waits until every appliance is up, its breaker closed and enrolled in the
 * fleet KEK. On a loaded machine an enrollment at start-up can time out; a
 * resync enrolls what was missed, as an operator would.
 */
async function fleetReady(t: TestBroker, workers: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const fleetStatus = await t.clients.fleet.getFleetStatus({});
    const up = t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === workers);
    if (up && fleetStatus.appliances.every((appliance) => appliance.enrolled)) return;
    if (Date.now() > deadline) throw new Error(`the fleet did not become ready: ${JSON.stringify(fleetStatus.appliances.map((appliance) => [appliance.id, appliance.enrolled, appliance.state]))}`);
    if (up) await t.clients.fleet.resyncKeys({ applianceId: '' });
    await sleep(250);
  }
}

/**
 * Creates a test key. Setup only: the broker never retries CreateKey on its
 * own, so a worker lost to a loaded machine during setup is retried here.
 */
async function createTestKey(t: TestBroker, keyId: string, keySpec: KeySpec, keyUsage: KeyUsage): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await t.clients.keys.createKey({ keyId, keySpec, keyUsage, description: '', labels: {}, rotationPeriodDays: 0 });
      return;
    } catch (error: unknown) {
      if ((error as ServiceError).code !== status.UNAVAILABLE || attempt === 3) throw error;
      await sleep(500);
    }
  }
}

interface LoadResult {
  ok: number;
  failed: string[];
}

/** Concurrent callers issuing idempotent calls until `during` finishes; counts completed calls. */
async function underLoad(callers: number, call: () => Promise<unknown>, during: () => Promise<void>): Promise<LoadResult> {
  let running = true;
  const result: LoadResult = { ok: 0, failed: [] };
  const loops = Array.from({ length: callers }, async () => {
    while (running) {
      try {
        await call();
        result.ok++;
      } catch (error: unknown) {
        result.failed.push(`${String((error as ServiceError).code)} ${(error as ServiceError).details ?? String(error)}`);
      }
    }
  });
  try {
    await during();
  } finally {
    running = false;
    await Promise.all(loops);
  }
  return result;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Waits until `count` more calls (of `op`) have settled than now. */
function settled(recorder: RoutedCallRecorder, count: number, op: string, timeoutMs = 60_000): Promise<void> {
  const start = recorder.calls.length;
  return until(() => recorder.calls.slice(start).filter((call) => call.op === op).length >= count, timeoutMs, `${String(count)} ${op} calls to settle`);
}

function sum(counts: Map<string, number>, ids: readonly string[]): number {
  return ids.reduce((total, id) => total + (counts.get(id) ?? 0), 0);
}

function triedAny(calls: readonly RoutedCall[], ids: readonly string[]): RoutedCall[] {
  return calls.filter((call) => call.attempts.some((attempt) => ids.includes(attempt.applianceId)));
}

const describeCalls = (calls: readonly RoutedCall[]): string =>
  JSON.stringify(calls.slice(0, 5).map((call) => call.attempts.map((attempt) => `${attempt.applianceId}:${attempt.outcome}`)));

const signRequest = { keyId: 'f/ec', message: Buffer.from('payload'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };

describe('zone failover on a 3x2 fleet', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let routed: RoutedCallRecorder;
  const zoneA = ['hsm-a1', 'hsm-a2'];
  const others = ['hsm-b1', 'hsm-b2', 'hsm-c1', 'hsm-c2'];

  before(async () => {
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '3x2', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, config: quickRecovery });
    routed = recordRoutedCalls(t.broker.fleet);
    await fleetReady(t, 1);
    await createTestKey(t, 'f/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
    await createTestKey(t, 'f/aes', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
  });

  after(async () => {
    await t.dispose();
  });

  beforeEach(async () => {
    await t.clients.fleet.clearFaults({ applianceId: '' });
    // Healthy and past slow start: every appliance takes its full share again.
    await until(
      () => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === 1 && appliance.weight >= 1),
      15_000,
      'a healthy fleet',
    );
  });

  it('prefers the local zone while it has capacity', async () => {
    const since = Date.now();
    for (let i = 0; i < 40; i++) await t.clients.crypto.sign(signRequest);
    const calls = routed.startedSince(since, 'sign');
    assert.equal(calls.length, 40);
    const served = routed.answeredBy(calls);
    // One caller at a time: the local zone always has a spare session, except
    // for the moment a background probe holds both of its workers.
    assert.ok(sum(served, zoneA) > sum(served, others), `local zone answered ${String(sum(served, zoneA))} of 40: ${JSON.stringify([...served])}`);
    assert.ok(calls.every((call) => call.attempts.length === 1), 'no call needed a second attempt');
  });

  it('moves traffic off a crashed local zone with no failed call, and back when it recovers', async () => {
    let outage: RoutedCall[] = [];
    const ejections = zoneA.map((id) => t.broker.fleet.appliance(id).breaker.ejections);
    const result = await underLoad(6, () => t.clients.crypto.sign(signRequest), async () => {
      await settled(routed, 20, 'sign');
      for (const id of zoneA) await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
      await until(() => zoneA.every((id) => t.broker.fleet.appliance(id).breaker.state !== 'closed'), 10_000, 'zone a breakers to open');
      const opened = Date.now();
      await settled(routed, 60, 'sign');
      outage = routed.startedSince(opened, 'sign');
      await t.clients.fleet.clearFaults({ applianceId: '' });
      await until(() => zoneA.every((id) => t.broker.fleet.appliance(id).breaker.state === 'closed' && t.broker.fleet.appliance(id).workerCount === 1), 10_000, 'zone a to recover');
    });
    assert.deepEqual(result.failed, [], 'no idempotent call failed');
    assert.ok(zoneA.every((id, i) => t.broker.fleet.appliance(id).breaker.ejections > (ejections[i] ?? 0)), 'both zone a breakers opened');
    assert.ok(outage.length > 0);
    assert.deepEqual(triedAny(outage, zoneA), [], `calls started while zone a was open never tried it: ${describeCalls(triedAny(outage, zoneA))}`);
    assert.ok(outage.every((call) => call.answeredBy !== undefined && others.includes(call.answeredBy)), 'another zone answered every call');
    // Traffic returns to the local zone once it is healthy again (and past slow start).
    await until(() => zoneA.every((id) => t.broker.fleet.appliance(id).weight >= 1), 15_000, 'zone a slow start to end');
    const since = Date.now();
    for (let i = 0; i < 40; i++) await t.clients.crypto.sign(signRequest);
    const back = routed.answeredBy(routed.startedSince(since, 'sign'));
    assert.ok(sum(back, zoneA) > sum(back, others), `zone a serves again: ${JSON.stringify([...back])}`);
  });

  it('ejects an appliance returning device errors: no failed call, breaker opens, traffic leaves it', async () => {
    const sick = t.broker.fleet.appliance('hsm-a1');
    const ejectionsBefore = sick.breaker.ejections;
    let whileOpen: RoutedCall[] = [];
    const result = await underLoad(4, () => t.clients.crypto.encrypt({ keyId: 'f/aes', plaintext: Buffer.from('x'), encryptionContext: {} }), async () => {
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
      await until(() => sick.breaker.state !== 'closed', 10_000, 'the breaker to open');
      const opened = Date.now();
      await settled(routed, 60, 'encrypt');
      whileOpen = routed.startedSince(opened, 'encrypt');
    });
    assert.deepEqual(result.failed, []);
    assert.ok(sick.breaker.ejections > ejectionsBefore, 'the breaker opened');
    assert.deepEqual(triedAny(whileOpen, ['hsm-a1']), [], `no call started while it was open tried it: ${describeCalls(triedAny(whileOpen, ['hsm-a1']))}`);
    assert.ok((routed.answeredBy(whileOpen).get('hsm-a2') ?? 0) > 0, 'its zone peer took over');
    const fleetStatus = await t.clients.fleet.getFleetStatus({});
    const a1 = fleetStatus.appliances.find((appliance) => appliance.id === 'hsm-a1');
    assert.equal(a1?.state, 3, 'reported OPEN');
    assert.ok((a1?.ejectionsTotal ?? 0) >= 1);
    assert.match(a1?.lastError ?? '', /CKR_DEVICE_ERROR/);
    assert.equal(a1?.faults.length, 1);
  });

  it('replaces a hung (SIGSTOPped) appliance worker without failing calls', async () => {
    const hung = t.broker.fleet.appliance('hsm-a2');
    const [pid] = hung.workerPids;
    assert.ok(pid);
    const result = await underLoad(4, () => t.clients.crypto.sign(signRequest), async () => {
      await settled(routed, 10, 'sign');
      process.kill(pid, 'SIGSTOP');
      await until(() => !hung.workerPids.includes(pid), 10_000, 'the hung worker to be replaced');
      await settled(routed, 20, 'sign');
    });
    assert.deepEqual(result.failed, []);
    assert.ok(hung.stats.workerRestartsTotal >= 1, 'the stopped worker was killed and replaced');
    assert.ok(hung.stats.failuresTotal >= 1, 'the hang counted against the appliance');
  });
});

describe('fleet behaviour in one zone', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let routed: RoutedCallRecorder;

  before(async () => {
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '1x3', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, config: quickRecovery });
    routed = recordRoutedCalls(t.broker.fleet);
    await fleetReady(t, 1);
    await createTestKey(t, 'f/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
  });

  after(async () => {
    await t.dispose();
  });

  beforeEach(async () => {
    await t.clients.fleet.clearFaults({ applianceId: '' });
    await until(
      () => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === 1 && appliance.weight >= 1),
      15_000,
      'a healthy fleet',
    );
  });

  it('sends less work to a slow appliance', async () => {
    await t.clients.fleet.injectFault({ applianceId: 'hsm-a2', kind: FaultKind.LATENCY, probability: 0, latencyMs: 40, durationMs: 0 });
    let since = 0;
    const result = await underLoad(3, () => t.clients.crypto.sign(signRequest), async () => {
      // Let the latency estimate learn how slow it now is, then count.
      await settled(routed, 30, 'sign');
      since = Date.now();
      await settled(routed, 150, 'sign');
    });
    assert.deepEqual(result.failed, []);
    const served = routed.answeredBy(routed.startedSince(since, 'sign'));
    const slow = served.get('hsm-a2') ?? 0;
    const fast = Math.min(served.get('hsm-a1') ?? 0, served.get('hsm-a3') ?? 0);
    assert.ok(slow * 2 < fast, `slow appliance answered ${String(slow)}, the others at least ${String(fast)} each`);
  });

  it('drains an appliance: no new work, no failed call; undrain brings it back', async () => {
    let whileDrained: RoutedCall[] = [];
    const result = await underLoad(4, () => t.clients.crypto.sign(signRequest), async () => {
      await settled(routed, 10, 'sign');
      const drained = await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
      assert.equal(drained.appliance?.state, 4, 'DRAINED');
      const since = Date.now();
      await settled(routed, 60, 'sign');
      whileDrained = routed.startedSince(since, 'sign');
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a1' });
    });
    assert.deepEqual(result.failed, []);
    assert.ok(whileDrained.length > 0);
    assert.deepEqual(triedAny(whileDrained, ['hsm-a1']), [], 'no call started while drained went to it');
    const since = Date.now();
    await underLoad(3, () => t.clients.crypto.sign(signRequest), () =>
      until(() => (routed.answeredBy(routed.startedSince(since, 'sign')).get('hsm-a1') ?? 0) > 0, 30_000, 'the undrained appliance to answer'),
    );
    assert.equal((await statusOf(t.clients.fleet.drainAppliance({ applianceId: 'nope' }))).code, status.NOT_FOUND);
    assert.equal((await statusOf(t.clients.fleet.drainAppliance({ applianceId: '' }))).code, status.INVALID_ARGUMENT);
  });

  it('refuses to fence the only zone, and to drain the last serving appliance', async () => {
    const refused = await statusOf(t.clients.fleet.fenceZone({ zone: 'az-a' }));
    assert.equal(refused.code, status.FAILED_PRECONDITION);
    assert.match(refused.message, /^zone: fencing az-a would leave no zone serving/);
    assert.deepEqual((await t.clients.fleet.getFleetStatus({})).fencedZones, []);
    assert.equal((await t.clients.crypto.sign(signRequest)).keyId, 'f/ec');
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a2' });
    try {
      const last = await statusOf(t.clients.fleet.drainAppliance({ applianceId: 'hsm-a3' }));
      assert.equal(last.code, status.FAILED_PRECONDITION);
      assert.match(last.message, /^appliance_id: draining hsm-a3 would leave no appliance serving/);
      assert.equal((await t.clients.crypto.sign(signRequest)).keyId, 'f/ec');
    } finally {
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a1' });
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a2' });
    }
    assert.equal((await statusOf(t.clients.fleet.fenceZone({ zone: 'az-z' }))).code, status.NOT_FOUND);
  });

  it('fails fast with UNAVAILABLE when every appliance is down, and heals by itself', async () => {
    for (const id of ['hsm-a1', 'hsm-a2', 'hsm-a3']) {
      await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 3000 });
    }
    const since = Date.now();
    const refused = await statusOf(t.clients.crypto.sign(signRequest));
    assert.equal(refused.code, status.UNAVAILABLE);
    const [first] = routed.startedSince(since, 'sign');
    // Fast, not a hang: a bounded number of attempts, each answered at once with a device error.
    assert.ok(first && first.attempts.length >= 1 && first.attempts.length <= 3, JSON.stringify(first?.attempts));
    assert.ok(first.attempts.every((attempt) => attempt.outcome === 'failed' && attempt.reason !== 'APPLIANCE_TIMEOUT'), JSON.stringify(first.attempts));
    // Background probes see the outage without any caller traffic…
    await until(() => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state !== 'closed'), 10_000, 'breakers to open');
    const again = Date.now();
    assert.equal((await statusOf(t.clients.crypto.sign(signRequest))).code, status.UNAVAILABLE);
    const [panic] = routed.startedSince(again, 'sign');
    // Every breaker open: only appliances still answering probes are tried, and here none does, so the
    // refusal comes without an attempt; any attempt made (a probe that just passed) failed at once.
    assert.ok(panic && panic.attempts.length <= 3 && panic.attempts.every((attempt) => attempt.outcome === 'failed' && attempt.reason !== 'APPLIANCE_TIMEOUT'), JSON.stringify(panic?.attempts));
    // …then the faults expire, probes close the breakers and calls succeed without operator action.
    await until(() => t.broker.fleet.appliances.every((appliance) => appliance.faults.length === 0 && appliance.breaker.state === 'closed'), 20_000, 'breakers to close');
    assert.equal((await t.clients.crypto.sign(signRequest)).keyId, 'f/ec');
  });

  it('never opens a breaker for caller errors, even in a flood', async () => {
    const ejections = t.broker.fleet.appliances.map((appliance) => appliance.breaker.ejections);
    const failures = t.broker.fleet.appliances.map((appliance) => appliance.stats.failuresTotal);
    const signed = await t.clients.crypto.sign(signRequest);
    const badSignature = Buffer.from(signed.signature);
    badSignature[10] = (badSignature[10] ?? 0) ^ 1;
    const callerErrors: (() => Promise<unknown>)[] = [
      () => t.clients.crypto.verify({ ...signRequest, keyVersion: 0, signature: badSignature }),
      () => t.clients.crypto.sign({ ...signRequest, keyId: 'no/such/key' }),
      () => t.clients.crypto.encrypt({ keyId: 'f/ec', plaintext: Buffer.from('x'), encryptionContext: {} }),
      () => t.clients.crypto.decrypt({ ciphertext: Buffer.from('HB\u0001\u0004f/ecAAAAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'), encryptionContext: {} }),
      () => t.clients.crypto.sign({ ...signRequest, messageType: MessageType.DIGEST, message: Buffer.alloc(5) }),
    ];
    let i = 0;
    const flood = await underLoad(6, () => (callerErrors[i++ % callerErrors.length])(), () => until(() => i >= 200, 60_000, '200 caller errors'));
    // Verify with a wrong signature answers signature_valid=false; the other four are refused.
    assert.ok(flood.ok + flood.failed.length >= 200 && flood.failed.length >= 150, `${String(flood.ok)} answered, ${String(flood.failed.length)} refused`);
    assert.deepEqual(t.broker.fleet.appliances.map((appliance) => appliance.breaker.ejections), ejections);
    assert.deepEqual(t.broker.fleet.appliances.map((appliance) => appliance.stats.failuresTotal), failures);
    assert.ok(t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed'));
  });
});

describe('saturation and hedging', { timeout: 300_000 }, () => {
  it('queues within bounds and answers RESOURCE_EXHAUSTED, never hangs, when every session is busy', async () => {
    const t = await startTestBroker({
      env: { HSMB_LOCAL_FLEET: '1x1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1', HSMB_MIN_REPLICAS: '1', HSMB_MIN_ZONES: '1' },
      config: { ...quickRecovery, routing: { ...quickRecovery.routing, healthIntervalMs: 2000, probeTimeoutMs: 1000 } },
    });
    try {
      await fleetReady(t, 1);
      await createTestKey(t, 'f/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
      // Slow enough, against a deadline long enough, that the broker's margin
      // before the deadline (a tenth of it) outlasts a loaded event loop.
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.LATENCY, probability: 0, latencyMs: 500, durationMs: 0 });
      // Let the latency estimate learn how slow the appliance now is.
      for (let i = 0; i < 12; i++) await t.clients.crypto.sign(signRequest);
      const { connect } = await import('./testing/broker-harness.js');
      const shortDeadline = connect(t.broker.address, 2500);
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () =>
          shortDeadline.crypto.sign(signRequest).then(
            () => 'ok',
            (error: ServiceError) => status[error.code],
          ),
        ),
      );
      shortDeadline.close();
      // Nobody waited past the deadline: no DEADLINE_EXCEEDED, the broker answered first.
      assert.ok(outcomes.includes('ok'), outcomes.join());
      assert.ok(outcomes.includes('RESOURCE_EXHAUSTED'), outcomes.join());
      assert.ok(outcomes.every((outcome) => outcome === 'ok' || outcome === 'RESOURCE_EXHAUSTED'), outcomes.join());
    } finally {
      await t.dispose();
    }
  });

  it('hedges a slow signature onto a second appliance after the hedge delay, and the hedge wins', async () => {
    // Two zones, one session each: the first attempt always goes to the local
    // hsm-a1 while it is idle; probes are rare so they never hold its worker.
    const t = await startTestBroker({
      env: { HSMB_LOCAL_FLEET: '2x1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1', HSMB_HEDGE_DELAY_MS: '50' },
      config: { ...quickRecovery, timeouts: { callMs: 10_000 }, routing: { ...quickRecovery.routing, consecutiveFailures: 100, healthIntervalMs: 600_000 } },
    });
    try {
      const routed = recordRoutedCalls(t.broker.fleet);
      const a1 = t.broker.fleet.appliance('hsm-a1');
      await fleetReady(t, 1);
      await createTestKey(t, 'f/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.LATENCY, probability: 0, latencyMs: 4000, durationMs: 0 });
      for (let i = 0; i < 3; i++) {
        // The previous call's losing attempt still holds hsm-a1's worker; wait for it.
        await until(() => a1.inFlight === 0, 30_000, 'hsm-a1 to be idle');
        const since = Date.now();
        await t.clients.crypto.sign(signRequest);
        const [call] = routed.startedSince(since, 'sign');
        assert.ok(call, 'the call was routed');
        assert.deepEqual(
          call.attempts.map((attempt) => [attempt.applianceId, attempt.hedge, attempt.outcome]),
          [
            ['hsm-a1', false, 'pending'],
            ['hsm-b1', true, 'answered'],
          ],
          'the slow first attempt was still running when the hedge answered',
        );
        assert.equal(call.answeredBy, 'hsm-b1');
      }
    } finally {
      await t.dispose();
    }
  });
});

describe('fault injection switch', { timeout: 120_000 }, () => {
  it('refuses InjectFault with FAILED_PRECONDITION unless enabled', async () => {
    const t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '1x1', HSMB_WORKERS_PER_APPLIANCE: '1' } });
    try {
      const refused = await statusOf(t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 }));
      assert.equal(refused.code, status.FAILED_PRECONDITION);
      assert.match(refused.message, /HSMB_FAULT_INJECTION/);
      assert.equal((await t.clients.fleet.clearFaults({ applianceId: '' })).cleared, 0, 'clearing is always safe');
    } finally {
      await t.dispose();
    }
  });
});
