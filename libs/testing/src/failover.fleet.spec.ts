import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplianceState, KeySpec, KeyUsage } from '@hsm-broker/client';
import type { BrokerClient } from '@hsm-broker/client';
import { startContainerFleet } from './container-fleet.js';
import type { ContainerFleet } from './container-fleet.js';
import { FleetSampler } from './fleet-sampler.js';
import { formatScenarioTable, summarise, verifyLoadResults } from './load-report.js';
import type { ScenarioRow } from './load-report.js';
import { startMixedLoad } from './mixed-load.js';
import type { LoadKeys } from './mixed-load.js';

// The failover suite: a containerised fleet of 3 zones x 2 appliances, one
// broker container, and a steady mixed load from client processes on the
// host. Each scenario breaks the fleet the way real appliances break, then
// repairs it; the fleet is shared because every scenario leaves it healthy.

const warmMs = 4000;
const faultMs = 8000;
const settleMs = 3000;
const rows: ScenarioRow[] = [];
const log = (line: string): void => console.log(`# ${line}`);

async function waitAllHealthy(client: BrokerClient, ids: readonly string[] | undefined, withinMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      const status = await client.getFleetStatus({}, { deadlineMs: 1000 });
      const pending = status.appliances.filter((appliance) => (!ids || ids.includes(appliance.id)) && appliance.state !== ApplianceState.HEALTHY);
      if (pending.length === 0) return Date.now() - started;
      if (Date.now() - started > withinMs) {
        throw new Error(`not healthy within ${String(withinMs)} ms: ${pending.map((appliance) => `${appliance.id}=${ApplianceState[appliance.state] ?? appliance.state} (${appliance.lastError})`).join(', ')}`);
      }
    } catch (error: unknown) {
      if (Date.now() - started > withinMs) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('failover suite on a containerised fleet (3 zones x 2 appliances)', { timeout: 20 * 60_000 }, () => {
  let fleet: ContainerFleet | undefined;
  let client: BrokerClient;
  let keys: LoadKeys;

  before(async () => {
    fleet = await startContainerFleet({ zones: 3, appliancesPerZone: 2, log });
    client = fleet.client({ deadlineMs: 30_000 });
    await waitAllHealthy(client, undefined, 120_000);
    const create = async (keySpec: KeySpec, keyUsage: KeyUsage): Promise<string> =>
      (await client.createKey({ keySpec, keyUsage, description: 'failover suite' })).keyMetadata?.keyId ?? '';
    keys = {
      aes: await create(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT),
      ec: await create(KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY),
      hmac: await create(KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC),
    };
  });

  after(async () => {
    if (rows.length > 0) console.log(`\n${formatScenarioTable(rows)}\n`);
    client?.close();
    await fleet?.dispose();
  });

  /**
   * Runs the load, applies the fault, holds it, repairs, waits until the
   * broker sees the faulty appliances healthy, and checks every result.
   */
  async function scenario(name: string, faulty: string[], fault: () => Promise<void>, repair: () => Promise<void>): Promise<void> {
    const current = fleet;
    assert.ok(current, 'the fleet did not start');
    await waitAllHealthy(client, undefined, 120_000);
    const sampler = new FleetSampler(client);
    sampler.start();
    const load = startMixedLoad({ address: current.brokerAddress, keys });
    let repairMs: number | undefined;
    let faultAt = 0;
    let repairAt = 0;
    let stopped = false;
    try {
      await new Promise((resolve) => setTimeout(resolve, warmMs));
      faultAt = Date.now();
      await fault();
      await new Promise((resolve) => setTimeout(resolve, faultMs));
      repairAt = Date.now();
      await repair();
      await waitAllHealthy(client, faulty, 120_000);
      repairMs = Date.now() - repairAt;
      await new Promise((resolve) => setTimeout(resolve, settleMs));
    } catch (error: unknown) {
      // A failed step must not leave the load processes running: they would keep the test file alive.
      stopped = true;
      await load.stop().catch(() => undefined);
      throw error;
    } finally {
      sampler.stop();
    }
    assert.ok(!stopped);
    const calls = await load.stop();
    const summary = summarise(calls);
    const trafficLeftMs = sampler.trafficLeftMs(faultAt, faulty, repairAt);
    rows.push({ scenario: name, summary, trafficLeftMs, repairMs });
    log(`${name}: ${String(summary.calls)} calls, failures ${JSON.stringify(summary.failuresByCode)}, p50 ${summary.p50Ms.toFixed(1)} ms, p99 ${summary.p99Ms.toFixed(1)} ms`);

    assert.ok(summary.calls > 100, `the load made only ${String(summary.calls)} calls`);
    assert.deepEqual(
      summary.idempotentFailures.map((call) => `${call.op} ${call.code}: ${call.message ?? ''}`),
      [],
      'idempotent calls failed during the fault',
    );
    const zoneOf = (id: string): string => current.appliance(id).zone;
    const problems = await verifyLoadResults(client, calls, { minAppliances: 2, minZones: 2, zoneOf });
    assert.deepEqual(problems, [], 'results made during the scenario did not check out');
    assert.ok(calls.some((call) => call.op === 'CreateKey' && call.ok), 'no CreateKey succeeded during the scenario');
  }

  test('1. kill one appliance (SIGKILL) under load: no failed idempotent call', async () => {
    const target = fleet?.appliance('hsm-a1');
    assert.ok(target);
    await scenario('1 kill hsm-a1', [target.id], () => target.kill(), () => target.start());
  });

  test('2. pause one appliance (a hang) under load: no failed idempotent call', async () => {
    const target = fleet?.appliance('hsm-a2');
    assert.ok(target);
    await scenario('2 pause hsm-a2', [target.id], () => target.pause(), () => target.unpause());
  });

  test('3. partition a whole zone under load: no failed idempotent call', async () => {
    const current = fleet;
    assert.ok(current);
    const zone = 'az-b';
    await scenario(`3 partition ${zone}`, current.zoneAppliances(zone).map((appliance) => appliance.id), () => current.partitionZone(zone), () => current.healZone(zone));
  });
});
