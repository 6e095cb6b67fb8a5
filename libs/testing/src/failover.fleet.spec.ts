import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BreakerState, KeySpec, KeyUsage } from '@hsm-broker/client';
import type { BrokerClient } from '@hsm-broker/client';
import { runChaosAgainst } from './chaos-in-suite.js';
import { startContainerFleet } from './container-fleet.js';
import type { ContainerFleet } from './container-fleet.js';
import { failuresUntilReconnected, fastRefusalOnceKnown, runScenario, waitAllHealthy, waitUntil } from './fleet-scenario.js';
import { formatScenarioTable } from './load-report.js';
import type { ScenarioRow } from './load-report.js';
import type { LoadKeys } from './mixed-load.js';
import { probePkcs11Link } from './pkcs11-link-probe.js';

// The failover suite: a containerised fleet of 3 zones x 2 appliances, one
// broker container, and a steady mixed load from client processes on the
// host. Each scenario breaks the fleet the way real appliances break, then
// repairs it; the fleet is shared because every scenario leaves it healthy.
// The local zone (az-a) carries the traffic, so faults that must move
// traffic aim at it.

const rows: ScenarioRow[] = [];
const log = (line: string): void => console.log(`# ${line}`);
const localZone = 'az-a';

describe('failover suite on a containerised fleet (3 zones x 2 appliances)', { timeout: 30 * 60_000 }, () => {
  let fleet: ContainerFleet;
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

  const replicasOf = async (keyId: string): Promise<string[]> => (await client.describeKey({ keyId }, { deadlineMs: 5000 })).keyMetadata?.replicas ?? [];

  test('the PKCS#11 links are mutual TLS, the nodes run unprivileged, the broker is published on loopback only', async () => {
    assert.match(fleet.brokerAddress, /^127\.0\.0\.1:\d+$/);
    const target = fleet.appliance('hsm-b1');
    assert.equal(await probePkcs11Link(fleet, target.id, 'mutual'), 'served', 'the broker cannot reach the token over mutual TLS');
    assert.equal(await probePkcs11Link(fleet, target.id, 'anonymous'), 'refused', 'a TLS client without a fleet certificate reached the token');
    assert.equal(await probePkcs11Link(fleet, target.id, 'plain'), 'refused', 'a plaintext p11-kit client reached the token');
    const status = (await target.run(['cat', '/proc/1/status'])).output;
    const field = (name: string): string[] => (new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).filter((value) => value !== '');
    assert.deepEqual(new Set(field('Uid')), new Set(['10002']), `the node runs as ${field('Uid').join(' ')}`);
    assert.deepEqual(new Set(field('Gid')), new Set(['10002']), `the node's groups are ${field('Gid').join(' ')}`);
    assert.deepEqual(field('Groups').filter((gid) => gid !== '10002'), [], `the node kept supplementary groups ${field('Groups').join(' ')}`);
  });

  test('1. kill one appliance (SIGKILL) under load: no failed idempotent call', async () => {
    const target = fleet.appliance('hsm-a1');
    await runScenario(fleet, client, keys, { name: '1 kill hsm-a1', faulty: [target.id], fault: () => target.kill(), repair: () => target.start() }, rows);
  });

  test('2. pause one appliance (a hang) under load: no failed idempotent call', async () => {
    const target = fleet.appliance('hsm-a2');
    await runScenario(fleet, client, keys, { name: '2 pause hsm-a2', faulty: [target.id], fault: () => target.pause(), repair: () => target.unpause() }, rows);
  });

  test('3. partition a whole zone under load: no failed idempotent call', async () => {
    const zone = 'az-b';
    const faulty = fleet.zoneAppliances(zone).map((appliance) => appliance.id);
    await runScenario(fleet, client, keys, { name: `3 partition ${zone}`, faulty, fault: () => fleet.partitionZone(zone), repair: () => fleet.healZone(zone) }, rows);
  });

  test('4. kill a whole zone and bring it back: traffic returns, keys created meanwhile are repaired onto it', async () => {
    const zone = localZone;
    const faulty = fleet.zoneAppliances(zone).map((appliance) => appliance.id);
    const outcome = await runScenario(
      fleet,
      client,
      keys,
      {
        name: `4 kill ${zone}, return`,
        faulty,
        fault: () => fleet.killZone(zone),
        repair: () => fleet.startZone(zone),
        // Repaired: healthy again, and every key created while the zone was down is on both of its appliances.
        repaired: async ({ times, calls }) => {
          await waitAllHealthy(client, undefined, 120_000);
          const repaired = new Set<string>();
          await waitUntil(`keys created while ${zone} was down repaired onto it`, 120_000, async () => {
            const made = calls.filter((call) => call.op === 'CreateKey' && call.ok && call.keyId && call.at >= times.faultAt && call.at <= times.repairAt);
            for (const call of made) {
              const keyId = call.keyId ?? '';
              if (repaired.has(keyId)) continue;
              const replicas = await replicasOf(keyId);
              if (faulty.every((id) => replicas.includes(id))) repaired.add(keyId);
            }
            return made.every((call) => repaired.has(call.keyId ?? ''));
          });
        },
      },
      rows,
    );
    const createdDuringOutage = outcome.calls.filter((call) => call.op === 'CreateKey' && call.ok && call.at >= outcome.times.faultDoneAt && call.at + call.ms <= outcome.times.repairAt);
    assert.ok(createdDuringOutage.length > 0, `no key was created while ${zone} was down`);
    for (const call of createdDuringOutage) {
      const replicas = await replicasOf(call.keyId ?? '');
      assert.ok(faulty.every((id) => replicas.includes(id)), `key ${call.keyId ?? ''} created during the outage is on ${replicas.join(', ')}, not on ${faulty.join(' and ')}`);
    }
    assert.ok(outcome.sampler.requestsBetween(faulty, outcome.times.repairedAt, Number.MAX_SAFE_INTEGER) > 0, `no traffic returned to ${zone} after its repair`);
  });

  test('5. zeroize an appliance under load: the broker notices, refills it, it rejoins', async () => {
    const target = fleet.appliance('hsm-a2');
    const before = (await client.getFleetStatus({})).appliances.find((appliance) => appliance.id === target.id);
    assert.ok(before && before.keysPresent > 0, `${target.id} holds no keys before the zeroize`);
    let serials = '';
    const outcome = await runScenario(
      fleet,
      client,
      keys,
      {
        name: `5 zeroize ${target.id}`,
        faulty: [],
        holdMs: 0,
        fault: async () => {
          serials = await target.zeroize();
        },
        repaired: async ({ sampler, times }) => {
          // Refilled: the broker saw the empty token (fewer keys or not enrolled), then put every key back.
          // Every key goes back one clone at a time (wrap on a holder, unwrap here): allow for a loaded machine.
          await waitUntil(`${target.id} refilled after its zeroize`, 300_000, () => {
            const dip = sampler.firstAfter(times.faultAt, (sample) => {
              const seen = sample.appliances.get(target.id);
              return seen !== undefined && (!seen.enrolled || seen.keysPresent < before.keysPresent);
            });
            const refilled = dip && sampler.firstAfter(dip.at, (sample) => {
              const seen = sample.appliances.get(target.id);
              return seen !== undefined && seen.enrolled && seen.keysMissing === 0 && seen.keysPresent >= before.keysPresent && seen.breakerState === BreakerState.CLOSED;
            });
            return refilled !== undefined;
          });
        },
      },
      rows,
    );
    assert.match(serials, /^zeroized: token serial (\S+) -> (?!\1)\S+$/, 'the node reported no new token serial');
    for (const keyId of [keys.aes, keys.ec, keys.hmac]) assert.ok((await replicasOf(keyId)).includes(target.id), `${keyId} was not put back on ${target.id}`);
    assert.ok(outcome.sampler.requestsBetween([target.id], outcome.times.repairedAt, Number.MAX_SAFE_INTEGER) > 0, `${target.id} served nothing after it was refilled`);
  });

  test('6. restart the broker container under load: only calls made while it is away fail, with UNAVAILABLE', async () => {
    const before = await fleet.brokerProcess();
    await runScenario(
      fleet,
      client,
      keys,
      {
        name: '6 restart broker',
        faulty: [],
        holdMs: 0,
        fault: () => fleet.restartBroker(),
        unacceptable: failuresUntilReconnected('UNAVAILABLE'),
      },
      rows,
    );
    assert.notEqual((await fleet.brokerProcess()).startedAt, before.startedAt, 'the broker container was not restarted');
  });

  test('7. flapping appliance (stopped and started again and again): back-off keeps it out, no failed idempotent call', async () => {
    const target = fleet.appliance('hsm-a1');
    const ejections = async (): Promise<number> => (await client.getFleetStatus({})).appliances.find((appliance) => appliance.id === target.id)?.ejectionsTotal ?? 0;
    const ejectedBefore = await ejections();
    await runScenario(
      fleet,
      client,
      keys,
      {
        name: `7 flapping ${target.id}`,
        faulty: [target.id],
        holdMs: 0,
        fault: async () => {
          for (let flap = 0; flap < 3; flap++) {
            await target.stop();
            await new Promise((resolve) => setTimeout(resolve, 2000));
            await target.start();
            await new Promise((resolve) => setTimeout(resolve, 2000));
          }
        },
      },
      rows,
    );
    assert.ok((await ejections()) > ejectedBefore, `the breaker of ${target.id} never opened while it flapped`);
  });

  test('8. slow appliance (+200 ms each way): traffic moves off it, no failed idempotent call', async () => {
    const target = fleet.appliance('hsm-a2');
    const peers = fleet.zoneAppliances(localZone).map((appliance) => appliance.id);
    const outcome = await runScenario(
      fleet,
      client,
      keys,
      // Right after scenario 7 the balance in the zone has been far off (0.09,
      // 0.11) even after a 10 s warm-up, cause not yet known: the fault waits
      // until the target carries its part of the zone's traffic again.
      {
        name: `8 slow ${target.id} +200ms`,
        faulty: [target.id],
        warmMs: 5000,
        warmedUp: (sampler) => {
          const now = Date.now();
          return sampler.requestsBetween([target.id], now - 5000, now) > 0.2 * Math.max(1, sampler.requestsBetween(peers, now - 5000, now));
        },
        holdMs: 10_000,
        fault: () => target.slow(200),
        repair: () => target.slow(0),
      },
      rows,
    );
    const { sampler, times } = outcome;
    const share = (from: number, until: number): number => sampler.requestsBetween([target.id], from, until) / Math.max(1, sampler.requestsBetween(peers, from, until));
    const normal = share(times.faultAt - 5000, times.faultAt);
    const slowed = share(times.faultDoneAt + (times.repairAt - times.faultDoneAt) / 2, times.repairAt);
    log(`slow ${target.id}: share of ${localZone} traffic ${normal.toFixed(2)} before, ${slowed.toFixed(2)} in the second half of the fault`);
    assert.ok(normal > 0.2, `${target.id} carried too little traffic before the fault to tell (${normal.toFixed(2)})`);
    assert.ok(slowed < normal / 2, `traffic did not move off the slow ${target.id}: share ${normal.toFixed(2)} before, ${slowed.toFixed(2)} while slow`);
  });

  test('9. all appliances down: fast UNAVAILABLE, then recovery without a broker restart', async () => {
    const before = await fleet.brokerProcess();
    const outcome = await runScenario(
      fleet,
      client,
      keys,
      {
        name: '9 all appliances down',
        faulty: fleet.appliances.map((appliance) => appliance.id),
        holdMs: 6000,
        fault: () => fleet.killAll(),
        repair: () => fleet.startAll(),
        unacceptable: fastRefusalOnceKnown,
      },
      rows,
    );
    const during = outcome.calls.filter((call) => call.at >= outcome.times.faultDoneAt && call.at + call.ms <= outcome.times.repairAt);
    assert.ok(during.some((call) => call.code === 'UNAVAILABLE'), 'no call was refused with UNAVAILABLE while every appliance was down');
    assert.deepEqual(await fleet.brokerProcess(), before, 'the broker was restarted to recover');
  });

  test('chaos: a short seeded hsmctl chaos run against the container fleet passes its history check', async () => {
    const result = await runChaosAgainst(fleet, { seed: 7, duration: '40s', log });
    // The first line names the violations: a CI summary shows only that line.
    const found = result.summary.violations.map((violation) => JSON.stringify(violation)).join('; ');
    assert.equal(result.exitCode, 0, `hsmctl chaos failed (exit ${String(result.exitCode)}; violations: ${found || 'none'}):\n${result.output}`);
    assert.ok(result.summary.issued > 100, `chaos issued only ${String(result.summary.issued)} calls`);
    assert.ok(result.summary.faultActions > 0, 'the schedule drew no faults');
    assert.deepEqual(result.summary.violations, [], 'the history check found violations');
    assert.ok(result.historyLines > result.summary.issued / 2, 'the history file holds fewer records than calls');
  });
});
