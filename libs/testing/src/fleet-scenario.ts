import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplianceState } from '@hsm-broker/client';
import type { BrokerClient } from '@hsm-broker/client';
import type { ContainerFleet } from './container-fleet.js';
import { FleetSampler } from './fleet-sampler.js';
import type { FleetSample } from './fleet-sampler.js';

/** What a judge of calls may ask of the fleet status recorded during the scenario. */
export interface FleetHistory {
  firstAfter(from: number, test: (sample: FleetSample) => boolean): FleetSample | undefined;
}
import { idempotentOps, summarise, verifyLoadResults } from './load-report.js';
import type { LoadSummary, ScenarioRow } from './load-report.js';
import { startMixedLoad } from './mixed-load.js';
import type { LoadCall, LoadKeys } from './mixed-load.js';

/** When a scenario's fault and repair happened (ms since the epoch). */
export interface ScenarioTimes {
  faultAt: number;
  /** The fault step returned. */
  faultDoneAt: number;
  repairAt: number;
  /** The broker reported the fleet repaired. */
  repairedAt: number;
}

/** What a scenario saw, for its own checks after the common ones. */
export interface ScenarioOutcome {
  calls: LoadCall[];
  summary: LoadSummary;
  times: ScenarioTimes;
  sampler: FleetSampler;
}

/** What a scenario has seen so far, while it waits for its repair. */
export interface ScenarioProgress {
  sampler: FleetSampler;
  times: Omit<ScenarioTimes, 'repairedAt'>;
  /** The calls the load has reported so far (grows while the load runs). */
  calls: readonly LoadCall[];
}

/** One failover scenario: a fault, how long it lasts, how it is undone and what may fail meanwhile. */
export interface ScenarioPlan {
  name: string;
  /** The appliances the fault takes away; traffic must leave them. */
  faulty: readonly string[];
  fault(): Promise<void>;
  /** Undoes the fault; none when the broker repairs by itself or the fault undoes itself. */
  repair?: () => Promise<void>;
  /** Waits until the broker reports the fleet repaired; every appliance healthy by default. */
  repaired?(progress: ScenarioProgress): Promise<void>;
  /** How long the load runs before the fault (default 4 s). */
  warmMs?: number;
  /**
   * Whether the fleet is ready for the fault, asked every 250 ms once
   * `warmMs` has passed (for a scenario that needs a settled balance first);
   * the scenario fails when it is not within 30 s more.
   */
  warmedUp?: (sampler: FleetSampler) => boolean;
  /** How long the fault is held before `repair` (default 8 s). */
  holdMs?: number;
  /**
   * Why a failed call is not acceptable, or undefined when it is. Default:
   * no idempotent call may fail (CreateKey may, it is never retried blindly).
   */
  unacceptable?: (call: LoadCall, times: ScenarioTimes, calls: readonly LoadCall[], sampler: FleetHistory) => string | undefined;
}

const warmMs = 4000;
const warmUpLimitMs = 30_000;
const defaultHoldMs = 8000;
const settleMs = 3000;
const repairWithinMs = 120_000;

/** Milliseconds until every appliance in `ids` (all when undefined) is HEALTHY; throws after `withinMs`. */
export async function waitAllHealthy(client: BrokerClient, ids: readonly string[] | undefined, withinMs: number): Promise<number> {
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
    await sleep(250);
  }
}

/** Polls `check` every 250 ms until it returns true; throws `what` after `withinMs`. */
export async function waitUntil(what: string, withinMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // The broker may be busy or restarting: ask again.
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${String(withinMs)} ms`);
    await sleep(250);
  }
}

/** A failed call that overlapped [from, until] with the given code is acceptable; any other failure is not. */
export function failuresOnlyWithin(code: string, from: (times: ScenarioTimes) => number, until: (times: ScenarioTimes) => number): (call: LoadCall, times: ScenarioTimes) => string | undefined {
  return (call: LoadCall, times: ScenarioTimes): string | undefined => {
    if (call.code !== code) return `failed with ${call.code}, only ${code} is allowed`;
    if (call.at + call.ms < from(times) || call.at > until(times)) return `failed outside the fault (${code} is allowed only while it lasts)`;
    return undefined;
  };
}

/**
 * For a broker restart: a failed call is acceptable when it failed with
 * `code`, ended after the restart began, and its call loop had not yet had a
 * call succeed that started once the broker was healthy again (each loop has
 * its own connection, which comes back after the client's reconnect back-off).
 */
export function failuresUntilReconnected(code: string): (call: LoadCall, times: ScenarioTimes, calls: readonly LoadCall[]) => string | undefined {
  return (call, times, calls) => {
    if (call.code !== code) return `failed with ${call.code}, only ${code} is allowed`;
    if (call.at + call.ms < times.faultAt) return 'failed before the restart';
    const reconnected = calls.some((other) => other.loop === call.loop && other.ok && other.at >= times.faultDoneAt && other.at + other.ms <= call.at);
    return reconnected ? 'failed after its connection was back' : undefined;
  };
}

/**
 * For a fleet that is down altogether: idempotent calls may fail only while
 * it is down (until the repair), and once the broker knows the fleet is down
 * (it has refused a call with UNAVAILABLE and its own fleet status shows no
 * appliance in rotation) every later failure must be that fast refusal.
 * Calls already on their way to appliances the broker had not yet found
 * dead may run out their deadline. CreateKey is judged as always (it is
 * never retried blindly).
 */
export function fastRefusalOnceKnown(call: LoadCall, times: ScenarioTimes, calls: readonly LoadCall[], sampler: FleetHistory): string | undefined {
  if (!idempotentOps.has(call.op)) return undefined;
  if (call.at + call.ms < times.faultAt || call.at > times.repairedAt) return 'failed while the fleet was up';
  if (call.code === 'UNAVAILABLE') return undefined;
  const firstRefusal = Math.min(...calls.filter((other) => other.code === 'UNAVAILABLE' && other.at >= times.faultAt).map((other) => other.at + other.ms));
  const outOfRotation = new Set([ApplianceState.OPEN, ApplianceState.DOWN]);
  const allOut = sampler.firstAfter(times.faultAt, (sample) => sample.appliances.size > 0 && [...sample.appliances.values()].every((appliance) => outOfRotation.has(appliance.state)));
  const knownAt = Math.max(firstRefusal, allOut?.at ?? firstRefusal);
  return call.at < knownAt ? undefined : `failed with ${call.code} after the broker knew the fleet was down (it should refuse fast)`;
}

function defaultUnacceptable(call: LoadCall): string | undefined {
  return idempotentOps.has(call.op) ? 'an idempotent call failed during the fault' : undefined;
}

/**
 * Runs a scenario on a shared fleet: waits for a healthy fleet, starts the
 * mixed load from client processes, applies the fault, holds it, repairs,
 * waits for the broker to report the repair, lets the load settle, then
 * checks every call (failures judged by the plan; every ciphertext decrypts,
 * every signature verifies with node:crypto, every acknowledged CreateKey is
 * on the quorum). Adds the scenario's row to `rows`.
 */
export async function runScenario(fleet: ContainerFleet, client: BrokerClient, keys: LoadKeys, plan: ScenarioPlan, rows: ScenarioRow[]): Promise<ScenarioOutcome> {
  await waitAllHealthy(client, undefined, repairWithinMs);
  const sampler = new FleetSampler(client);
  sampler.start();
  const load = startMixedLoad({ address: fleet.brokerAddress, keys });
  let times: ScenarioTimes;
  try {
    await sleep(plan.warmMs ?? warmMs);
    if (plan.warmedUp) {
      const giveUpAt = Date.now() + warmUpLimitMs;
      while (!plan.warmedUp(sampler)) {
        if (Date.now() > giveUpAt) throw new Error(`${plan.name}: the fleet was not ready for the fault ${String(warmUpLimitMs / 1000)} s after the warm-up`);
        await sleep(250);
      }
    }
    const faultAt = Date.now();
    await plan.fault();
    const faultDoneAt = Date.now();
    await sleep(plan.holdMs ?? defaultHoldMs);
    const repairAt = Date.now();
    await plan.repair?.();
    const partial = { faultAt, faultDoneAt, repairAt };
    if (plan.repaired) await plan.repaired({ sampler, times: partial, calls: load.calls });
    else await waitAllHealthy(client, undefined, repairWithinMs);
    times = { ...partial, repairedAt: Date.now() };
    await sleep(settleMs);
  } catch (error: unknown) {
    // A failed step must not leave the load processes running: they would keep the test file alive.
    await load.stop().catch(() => undefined);
    throw error;
  } finally {
    sampler.stop();
  }
  const calls = await load.stop();
  const summary = summarise(calls);
  const trafficLeftMs = plan.faulty.length === 0 ? undefined : sampler.trafficLeftMs(times.faultAt, plan.faulty, times.repairAt);
  rows.push({ scenario: plan.name, summary, trafficLeftMs, repairMs: times.repairedAt - times.repairAt });
  console.log(`# ${plan.name}: ${String(summary.calls)} calls, failures ${JSON.stringify(summary.failuresByCode)}, p50 ${summary.p50Ms.toFixed(1)} ms, p99 ${summary.p99Ms.toFixed(1)} ms`);

  assert.ok(summary.calls > 100, `the load made only ${String(summary.calls)} calls`);
  const unacceptable = plan.unacceptable ?? defaultUnacceptable;
  assert.deepEqual(
    calls.flatMap((call) => {
      if (call.ok) return [];
      const reason = unacceptable(call, times, calls, sampler);
      return reason === undefined ? [] : [`${call.op} ${call.code} at +${String(call.at - times.faultAt)} ms: ${reason} (${call.message ?? ''})`];
    }),
    [],
    'calls failed that may not fail in this scenario',
  );
  const zoneOf = (id: string): string => fleet.appliance(id).zone;
  const problems = await verifyLoadResults(client, calls, { minAppliances: 2, minZones: 2, zoneOf });
  assert.deepEqual(problems, [], 'results made during the scenario did not check out');
  assert.ok(calls.some((call) => call.op === 'CreateKey' && call.ok), 'no CreateKey succeeded during the scenario');
  return { calls, summary, times, sampler };
}
