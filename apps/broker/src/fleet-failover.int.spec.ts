import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Fast breakers and probes so rehearsals finish in seconds. */
const quickRecovery = {
  timeouts: { callMs: 1000 },
  routing: { openMs: 300, maxOpenMs: 2000, healthIntervalMs: 100, probeTimeoutMs: 300, slowStartMs: 500, consecutiveFailures: 3 },
};

interface LoadResult {
  ok: number;
  failed: string[];
}

/** Concurrent callers issuing idempotent calls until `during` finishes. */
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

function requestsByAppliance(t: TestBroker): Map<string, number> {
  return new Map(t.broker.fleet.appliances.map((appliance) => [appliance.id, appliance.stats.requestsTotal]));
}

function delta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  return new Map([...after].map(([id, n]) => [id, n - (before.get(id) ?? 0)]));
}

function sum(counts: Map<string, number>, ids: string[]): number {
  return ids.reduce((total, id) => total + (counts.get(id) ?? 0), 0);
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const signRequest = { keyId: 'f/ec', message: Buffer.from('payload'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };

describe('zone failover on a 3x2 fleet', { timeout: 600_000 }, () => {
  let t: TestBroker;
  const zoneA = ['hsm-a1', 'hsm-a2'];
  const others = ['hsm-b1', 'hsm-b2', 'hsm-c1', 'hsm-c2'];

  before(async () => {
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '3x2', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, config: quickRecovery });
    await t.clients.keys.createKey({ keyId: 'f/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'f/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    await t.dispose();
  });

  beforeEach(async () => {
    await t.clients.fleet.clearFaults({ applianceId: '' });
    await until(() => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === 1), 15_000, 'a healthy fleet');
    await sleep(600);
  });

  it('prefers the local zone while it has capacity', async () => {
    const before = requestsByAppliance(t);
    const result = await underLoad(2, () => t.clients.crypto.sign(signRequest), () => sleep(1000));
    const served = delta(before, requestsByAppliance(t));
    assert.deepEqual(result.failed, []);
    assert.ok(sum(served, zoneA) >= 0.9 * result.ok, `local zone served ${String(sum(served, zoneA))} of ${String(result.ok)}`);
  });

  it('moves traffic off a crashed local zone with no failed call, and back when it recovers', async () => {
    let during = new Map<string, number>();
    const result = await underLoad(6, () => t.clients.crypto.sign(signRequest), async () => {
      await sleep(300);
      for (const id of zoneA) await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
      await sleep(500);
      const start = requestsByAppliance(t);
      await sleep(1000);
      during = delta(start, requestsByAppliance(t));
      await t.clients.fleet.clearFaults({ applianceId: '' });
      await until(() => zoneA.every((id) => t.broker.fleet.appliance(id).breaker.state === 'closed' && t.broker.fleet.appliance(id).workerCount === 1), 10_000, 'zone a to recover');
    });
    assert.deepEqual(result.failed, [], 'no idempotent call failed');
    assert.equal(sum(during, zoneA), 0, `nothing went to the dead zone: ${JSON.stringify([...during])}`);
    assert.ok(sum(during, others) > 20);
    // Traffic returns to the local zone once it is healthy again.
    await sleep(800);
    const before = requestsByAppliance(t);
    await underLoad(2, () => t.clients.crypto.sign(signRequest), () => sleep(1000));
    const after = delta(before, requestsByAppliance(t));
    assert.ok(sum(after, zoneA) > sum(after, others), `zone a serves again: ${JSON.stringify([...after])}`);
  });

  it('ejects an appliance returning device errors: no failed call, breaker opens, traffic leaves it', async () => {
    const sick = t.broker.fleet.appliance('hsm-a1');
    const ejectionsBefore = sick.breaker.ejections;
    let during = new Map<string, number>();
    const result = await underLoad(4, () => t.clients.crypto.encrypt({ keyId: 'f/aes', plaintext: Buffer.from('x'), encryptionContext: {} }), async () => {
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
      await until(() => sick.breaker.state !== 'closed', 5000, 'the breaker to open');
      const start = requestsByAppliance(t);
      await sleep(1000);
      during = delta(start, requestsByAppliance(t));
    });
    assert.deepEqual(result.failed, []);
    assert.ok(sick.breaker.ejections > ejectionsBefore);
    assert.ok((during.get('hsm-a1') ?? 0) <= 2, `the sick appliance got ${String(during.get('hsm-a1'))} calls while open`);
    assert.ok((during.get('hsm-a2') ?? 0) > 10, 'its zone peer took over');
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
      await sleep(200);
      process.kill(pid, 'SIGSTOP');
      await until(() => !hung.workerPids.includes(pid), 10_000, 'the hung worker to be replaced');
      await sleep(500);
    });
    assert.deepEqual(result.failed, []);
    assert.ok(hung.stats.workerRestartsTotal >= 1, 'the stopped worker was killed and replaced');
    assert.ok(hung.stats.failuresTotal >= 1, 'the hang counted against the appliance');
  });
});

describe('fleet behaviour in one zone', { timeout: 600_000 }, () => {
  let t: TestBroker;

  before(async () => {
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '1x3', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, config: quickRecovery });
    await t.clients.keys.createKey({ keyId: 'f/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    await t.dispose();
  });

  beforeEach(async () => {
    await t.clients.fleet.clearFaults({ applianceId: '' });
    await until(() => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed' && appliance.workerCount === 1), 15_000, 'a healthy fleet');
    await sleep(600);
  });

  it('sends less work to a slow appliance', async () => {
    await t.clients.fleet.injectFault({ applianceId: 'hsm-a2', kind: FaultKind.LATENCY, probability: 0, latencyMs: 40, durationMs: 0 });
    await sleep(300);
    const before = requestsByAppliance(t);
    const result = await underLoad(3, () => t.clients.crypto.sign(signRequest), () => sleep(2000));
    const served = delta(before, requestsByAppliance(t));
    assert.deepEqual(result.failed, []);
    const slow = served.get('hsm-a2') ?? 0;
    const fast = Math.min(served.get('hsm-a1') ?? 0, served.get('hsm-a3') ?? 0);
    assert.ok(slow * 3 < fast, `slow appliance served ${String(slow)}, the others at least ${String(fast)}`);
  });

  it('drains an appliance: no new work, no failed call; undrain brings it back', async () => {
    let during = new Map<string, number>();
    const result = await underLoad(4, () => t.clients.crypto.sign(signRequest), async () => {
      await sleep(200);
      const drained = await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
      assert.equal(drained.appliance?.state, 4, 'DRAINED');
      await sleep(100);
      const start = requestsByAppliance(t);
      await sleep(800);
      during = delta(start, requestsByAppliance(t));
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a1' });
      await sleep(1000);
    });
    assert.deepEqual(result.failed, []);
    assert.equal(during.get('hsm-a1'), 0);
    const before = requestsByAppliance(t);
    await underLoad(3, () => t.clients.crypto.sign(signRequest), () => sleep(800));
    assert.ok((delta(before, requestsByAppliance(t)).get('hsm-a1') ?? 0) > 0, 'the undrained appliance serves again');
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
      await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 1500 });
    }
    const started = Date.now();
    const refused = await statusOf(t.clients.crypto.sign(signRequest));
    assert.equal(refused.code, status.UNAVAILABLE);
    assert.ok(Date.now() - started < 1000, `failed in ${String(Date.now() - started)} ms`);
    // Background probes see the outage without any caller traffic…
    await until(() => t.broker.fleet.appliances.every((appliance) => appliance.breaker.state !== 'closed'), 5_000, 'breakers to open');
    const again = Date.now();
    assert.equal((await statusOf(t.clients.crypto.sign(signRequest))).code, status.UNAVAILABLE);
    assert.ok(Date.now() - again < 1000);
    // …then the faults expire, probes close the breakers and calls succeed without operator action.
    await until(() => t.broker.fleet.appliances.every((appliance) => appliance.faults.length === 0 && appliance.breaker.state === 'closed'), 15_000, 'breakers to close');
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
    await underLoad(6, () => (callerErrors[i++ % callerErrors.length])(), () => sleep(1500));
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
      await t.clients.keys.createKey({ keyId: 'f/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.LATENCY, probability: 0, latencyMs: 150, durationMs: 0 });
      // Let the latency estimate learn how slow the appliance now is.
      for (let i = 0; i < 12; i++) await t.clients.crypto.sign(signRequest);
      const { connect } = await import('./testing/broker-harness.js');
      const shortDeadline = connect(t.broker.address, 400);
      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () =>
          shortDeadline.crypto.sign(signRequest).then(
            () => 'ok',
            (error: ServiceError) => status[error.code],
          ),
        ),
      );
      shortDeadline.close();
      assert.ok(Date.now() - started < 1500, 'nobody waited past the deadline');
      assert.ok(outcomes.includes('ok'), outcomes.join());
      assert.ok(outcomes.includes('RESOURCE_EXHAUSTED'), outcomes.join());
      assert.ok(outcomes.every((outcome) => outcome === 'ok' || outcome === 'RESOURCE_EXHAUSTED'), outcomes.join());
    } finally {
      await t.dispose();
    }
  });

  it('hedges a slow signature onto a second appliance after the hedge delay', async () => {
    const t = await startTestBroker({
      env: { HSMB_LOCAL_FLEET: '1x2', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1', HSMB_MIN_ZONES: '1', HSMB_HEDGE_DELAY_MS: '50' },
      config: { ...quickRecovery, routing: { ...quickRecovery.routing, consecutiveFailures: 100 } },
    });
    try {
      await t.clients.keys.createKey({ keyId: 'f/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.LATENCY, probability: 0, latencyMs: 1000, durationMs: 0 });
      await t.clients.fleet.injectFault({ applianceId: 'hsm-a2', kind: FaultKind.LATENCY, probability: 0, latencyMs: 1000, durationMs: 0 });
      await t.clients.fleet.clearFaults({ applianceId: 'hsm-a2' });
      await sleep(200);
      let slowest = 0;
      for (let i = 0; i < 6; i++) {
        const started = Date.now();
        await t.clients.crypto.sign(signRequest);
        slowest = Math.max(slowest, Date.now() - started);
      }
      assert.ok(slowest < 600, `every signature came back well before the 1000 ms stall (slowest ${String(slowest)} ms)`);
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
