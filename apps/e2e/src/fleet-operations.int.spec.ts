import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  ApplianceState,
  BreakerState,
  createBrokerClient,
  FaultKind,
  KeySpec,
  KeyUsage,
  type ApplianceStatus,
  type BrokerClient,
} from '@hsm-broker/client';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { runHsmctl } from './hsmctl-run.js';
import type { ProcessResult } from './process-run.js';

// Operator controls and failure rehearsals through hsmctl, against a real
// broker started with fault injection enabled. The client library drives
// traffic and reads the fleet's state, so each step is checked by what the
// broker does, not only by what hsmctl prints.

/** Asserts a zero exit and returns stdout as text. */
function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

/** Asserts exit status 1 and returns stderr. */
function failed(result: ProcessResult, what: string): string {
  assert.equal(result.status, 1, `${what} exited ${String(result.status)}: ${result.stderr}`);
  assert.equal(result.stdout.length, 0, what);
  return result.stderr;
}

/** Retries `check` until it passes or `timeoutMs` runs out; then its last failure is thrown. */
async function eventually(check: () => Promise<void>, timeoutMs = 60_000, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error: unknown) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(intervalMs);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

describe('fleet operations through hsmctl', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  let client: BrokerClient;
  /** The appliance in the broker's own zone: the one routing prefers, so faults there matter. */
  let local: { id: string; zone: string };

  const hsmctl = (args: readonly string[]): Promise<ProcessResult> => runHsmctl(target.address, args);

  async function appliance(id: string): Promise<ApplianceStatus> {
    const found = (await client.getFleetStatus()).appliances.find((candidate) => candidate.id === id);
    assert.ok(found, `appliance ${id} is in the fleet status`);
    return found;
  }

  /** Encrypt/decrypt round trips that must all succeed, whatever the fleet is going through. */
  async function traffic(calls: number): Promise<void> {
    for (let index = 0; index < calls; index += 1) {
      const plaintext = randomBytes(64);
      const sealed = await client.encrypt({ keyId: 'ops/aes', plaintext });
      const opened = await client.decrypt({ ciphertext: sealed.ciphertext });
      assert.deepEqual(Buffer.from(opened.plaintext), plaintext);
    }
  }

  /** Waits until the appliance is back: breaker closed, healthy, serving. */
  async function recovered(id: string): Promise<void> {
    await eventually(async () => {
      await traffic(2);
      const status = await appliance(id);
      assert.equal(BreakerState[status.breakerState], 'CLOSED', `${id} breaker`);
      assert.equal(ApplianceState[status.state], 'HEALTHY', `${id} state`);
      assert.ok(status.workers > 0, `${id} has workers`);
    }, 90_000, 500);
  }

  before(async () => {
    target = await startBrokerUnderTest({ faultInjection: true });
    client = createBrokerClient({ address: target.address, deadlineMs: 60_000 });
    await client.createKey({ keyId: 'ops/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    const status = await client.getFleetStatus();
    const found = status.appliances.find((candidate) => candidate.zone === status.localZone);
    assert.ok(found, 'an appliance in the local zone');
    local = { id: found.id, zone: found.zone };
  });

  after(async () => {
    client?.close();
    await target?.dispose();
  });

  it('drains an appliance: it takes no new work until undrained', async () => {
    const drained = succeeded(await hsmctl(['fleet', 'drain', local.id]), 'fleet drain');
    assert.match(drained, new RegExp(`^${escape(local.id)}\\s+${escape(local.zone)}\\s+DRAINED\\s+CLOSED\\s+0\\s+yes\\s`, 'm'));
    try {
      const before = (await appliance(local.id)).requestsTotal;
      await traffic(20);
      assert.equal((await appliance(local.id)).requestsTotal, before, 'a drained appliance gets no calls');
      const status = succeeded(await hsmctl(['fleet', 'status']), 'fleet status');
      assert.match(status, new RegExp(`^${escape(local.id)}\\s+\\S+\\s+DRAINED\\s+\\S+\\s+\\d+\\s+yes\\s`, 'm'));
    } finally {
      const undrained = succeeded(await hsmctl(['fleet', 'undrain', local.id]), 'fleet undrain');
      assert.match(undrained, new RegExp(`^${escape(local.id)}\\s+\\S+\\s+(HEALTHY|DEGRADED)\\s+CLOSED\\s+0\\s+-\\s`, 'm'));
    }
    // Back in rotation (slowly at first): it serves calls again.
    const before = (await appliance(local.id)).requestsTotal;
    await eventually(async () => {
      await traffic(5);
      assert.ok((await appliance(local.id)).requestsTotal > before, 'the undrained appliance serves again');
    });
  });

  it('fences a zone: its appliances take no new work until unfenced', async () => {
    const fenced = succeeded(await hsmctl(['fleet', 'fence', local.zone]), 'fleet fence');
    assert.equal(fenced, `Fenced zone ${local.zone}: 0 of 1 appliances healthy.\n`);
    try {
      const status = await client.getFleetStatus();
      assert.deepEqual(status.fencedZones, [local.zone]);
      const before = (await appliance(local.id)).requestsTotal;
      await traffic(20);
      const after = await appliance(local.id);
      assert.equal(after.requestsTotal, before, 'an appliance in a fenced zone gets no calls');
      assert.equal(ApplianceState[after.state], 'DRAINED');
      assert.equal(after.drained, false, 'fencing is not draining');
      const text = succeeded(await hsmctl(['fleet', 'status']), 'fleet status');
      assert.match(text, new RegExp(`^${escape(local.zone)} \\(local\\)\\s+1\\s+0\\s+yes$`, 'm'));
    } finally {
      const unfenced = succeeded(await hsmctl(['fleet', 'unfence', local.zone]), 'fleet unfence');
      assert.match(unfenced, new RegExp(`^Unfenced zone ${escape(local.zone)}: [01] of 1 appliances healthy\\.\\n$`));
    }
    assert.deepEqual((await client.getFleetStatus()).fencedZones, []);
    await recovered(local.id);
  });

  it('refuses unknown appliances and zones with NOT_FOUND', async () => {
    assert.equal(
      failed(await hsmctl(['fleet', 'drain', 'hsm-nope']), 'drain'),
      'hsmctl: NOT_FOUND: appliance_id: no appliance named hsm-nope [APPLIANCE_NOT_FOUND]\n',
    );
    assert.match(failed(await hsmctl(['fleet', 'undrain', 'hsm-nope']), 'undrain'), /^hsmctl: NOT_FOUND: .*\[APPLIANCE_NOT_FOUND\]\n$/);
    assert.match(failed(await hsmctl(['fleet', 'fence', 'az-nope']), 'fence'), /^hsmctl: NOT_FOUND: .*\[ZONE_NOT_FOUND\]\n$/);
    assert.match(failed(await hsmctl(['fleet', 'unfence', 'az-nope']), 'unfence'), /^hsmctl: NOT_FOUND: .*\[ZONE_NOT_FOUND\]\n$/);
    assert.match(
      failed(await hsmctl(['fleet', 'inject', 'hsm-nope', '--kind', 'error']), 'inject'),
      /^hsmctl: NOT_FOUND: .*\[APPLIANCE_NOT_FOUND\]\n$/,
    );
    assert.match(failed(await hsmctl(['fleet', 'clear', 'hsm-nope']), 'clear'), /^hsmctl: NOT_FOUND: .*\[APPLIANCE_NOT_FOUND\]\n$/);
  });

  it('ERROR faults: calls fail over, the breaker opens, and clearing restores the appliance', async () => {
    const before = await appliance(local.id);
    const injected = succeeded(await hsmctl(['fleet', 'inject', local.id, '--kind', 'error']), 'fleet inject');
    assert.match(injected, new RegExp(`^Injected faults:\\n {2}${escape(local.id)}: ERROR, every call, until cleared$`, 'm'));
    try {
      await traffic(30);
      const during = await appliance(local.id);
      assert.ok(during.failuresTotal > before.failuresTotal, 'the injected errors were counted');
      assert.ok(during.ejectionsTotal > before.ejectionsTotal, 'the breaker opened');
      assert.deepEqual(during.faults.map((fault) => fault.kind), [FaultKind.ERROR]);
      const text = succeeded(await hsmctl(['fleet', 'status']), 'fleet status');
      assert.match(text, new RegExp(`^ {2}${escape(local.id)}: ERROR, every call, until cleared$`, 'm'));
      assert.match(text, new RegExp(`^${escape(local.id)}\\s+\\S+\\s+(OPEN|DEGRADED)\\s+(OPEN|HALF_OPEN|CLOSED)\\s+[1-9]\\d*\\s`, 'm'));
    } finally {
      assert.equal(succeeded(await hsmctl(['fleet', 'clear', local.id]), 'fleet clear'), 'Cleared 1 fault.\n');
    }
    assert.deepEqual((await appliance(local.id)).faults, []);
    await recovered(local.id);
  });

  it('LATENCY faults last as long as asked; the status says until when', async () => {
    const started = Date.now();
    const injected = succeeded(
      await hsmctl(['fleet', 'inject', local.id, '--kind', 'latency', '--latency-ms', '100', '--probability', '0.5', '--duration-ms', '600000']),
      'fleet inject',
    );
    const until = new RegExp(`^ {2}${escape(local.id)}: LATENCY 100 ms, probability 0\\.5, until (\\S+)$`, 'm').exec(injected)?.[1];
    assert.ok(until, injected);
    assert.ok(Math.abs(Date.parse(until) - (started + 600_000)) < 60_000, until);
    await traffic(5);

    // A short fault disappears by itself. It lasts 5 s so that starting
    // hsmctl on a loaded machine cannot outlast it before it is seen.
    succeeded(await hsmctl(['fleet', 'inject', local.id, '--kind', 'error', '--duration-ms', '5000']), 'fleet inject');
    assert.equal((await appliance(local.id)).faults.length, 2);
    await eventually(async () => {
      assert.equal((await appliance(local.id)).faults.length, 1, 'the 5 s fault expired');
    }, 20_000);

    // Without an appliance, clear empties the whole fleet.
    assert.equal(succeeded(await hsmctl(['fleet', 'clear']), 'fleet clear'), 'Cleared 1 fault.\n');
    assert.equal(succeeded(await hsmctl(['fleet', 'clear']), 'fleet clear'), 'Cleared 0 faults.\n');
    await recovered(local.id);
  });

  it('CRASH faults: killed workers are restarted while calls keep succeeding', async () => {
    const before = await appliance(local.id);
    succeeded(await hsmctl(['fleet', 'inject', local.id, '--kind', 'crash']), 'fleet inject');
    try {
      await traffic(10);
    } finally {
      succeeded(await hsmctl(['fleet', 'clear', local.id]), 'fleet clear');
    }
    await eventually(async () => {
      assert.ok((await appliance(local.id)).workerRestartsTotal > before.workerRestartsTotal, 'workers were restarted');
    });
    await recovered(local.id);
  });

  it('HANG faults: hung calls are abandoned and served elsewhere', async () => {
    succeeded(await hsmctl(['fleet', 'inject', local.id, '--kind', 'hang', '--duration-ms', '60000']), 'fleet inject');
    try {
      await traffic(3);
    } finally {
      succeeded(await hsmctl(['fleet', 'clear', local.id]), 'fleet clear');
    }
    await recovered(local.id);
  });
});

describe('fleet inject on a broker without fault injection', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;

  before(async () => {
    target = await startBrokerUnderTest();
  });

  after(async () => {
    await target?.dispose();
  });

  it('is refused with FAILED_PRECONDITION: hsmctl exits 1', async () => {
    const fleet = JSON.parse(
      succeeded(await runHsmctl(target.address, ['fleet', 'status', '--output', 'json']), 'fleet status'),
    ) as { appliances: { id: string }[] };
    const id = fleet.appliances[0]?.id ?? '';
    const result = await runHsmctl(target.address, ['fleet', 'inject', id, '--kind', 'error']);
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /^hsmctl: FAILED_PRECONDITION: fault injection is disabled.*\n$/);
    const status = succeeded(await runHsmctl(target.address, ['fleet', 'status']), 'fleet status');
    assert.doesNotMatch(status, /Injected faults/);
  });
});
