// The failover run: steady Sign traffic through a broker with a 3-zone fleet,
// then the whole local zone dies (every appliance's workers crash on every
// call), then it comes back. It answers: does any idempotent call fail, how
// slow do calls get, how fast does traffic leave the dead zone, and how fast
// does it return.
//
//   warm-up | before | during: InjectFault CRASH on each local appliance | after: ClearFaults
//
// Load comes from open-loop generators (a fixed rate whatever the answers), so
// a slow failover shows as latency and failures rather than as fewer calls.
import { Metadata, credentials } from '@grpc/grpc-js';
import { ApplianceState, BreakerState, ClearFaultsRequest, FaultKind, FleetServiceClient, InjectFaultRequest } from '@hsm-broker/proto';
import { cleanEnvironment } from './broker-process.mjs';
import { readFleetStatus, startFleetSampler } from './fleet-sampler.mjs';
import { epochNow, latencyTimeline, percentile, summarizePhases } from './latency-stats.mjs';
import { runMeasuringProcesses } from './measuring-processes.mjs';
import { startCpuWindow, withOther } from './process-cpu.mjs';
import { attemptsBetween, compactSamples, shareTimeline, timeBackToZone, timeOffZone, zoneSeries, zoneStateChanges } from './zone-traffic.mjs';

/** What the run is held to; printed beside the results. */
export const failoverTargets = {
  failedCalls: 0,
  offDeadZoneMs: 2000,
  offDeadZoneShare: 0.01,
  duringP99Ms: 250,
};

/** Longest a broker log list kept in the JSON may grow. */
const maxEvents = 500;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const sleepUntil = (epochMs) => sleep(epochMs - epochNow());

/**
 * A FleetService unary call as a promise, with a deadline.
 * @param {any} client
 * @param {string} method
 * @param {object} request
 */
export function fleetCall(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, new Metadata(), { deadline: Date.now() + 5000 }, (error, response) => {
      if (error) reject(new Error(`FleetService.${method}: ${error.details ?? error.message} (gRPC code ${error.code})`));
      else resolve(response);
    });
  });
}

/**
 * Waits until every appliance serves with a closed breaker and all its
 * workers: a run that starts on a half-recovered fleet measures the wrong thing.
 * @param {string} address
 * @param {number} workersPerAppliance
 * @param {number} timeoutMs
 */
async function waitForHealthyFleet(address, workersPerAppliance, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let status;
  while (Date.now() < deadline) {
    status = await readFleetStatus(address);
    const unhealthy = status.appliances.filter(
      (appliance) => appliance.state !== ApplianceState.HEALTHY || appliance.breakerState !== BreakerState.CLOSED || appliance.workers < workersPerAppliance,
    );
    if (unhealthy.length === 0) return status;
    await sleep(200);
  }
  throw new Error(`the fleet was not healthy within ${timeoutMs} ms: ${JSON.stringify(status?.appliances.map((appliance) => [appliance.id, appliance.state, appliance.breakerState, appliance.workers]))}`);
}

/**
 * Sends the phases' fleet operations at the right instants while the load
 * runs, and measures CPU per phase. Resolves with the instants (epoch ms).
 * @param {object} context
 */
async function drivePhases({ broker, fleetClient, deadAppliances, options, generatorPids, progress }) {
  const goAt = epochNow();
  const cpuGroups = {
    brokerMain: () => [/** @type {number} */ (broker.child.pid)],
    brokerWorkers: () => broker.workerPids(),
    loadGenerators: () => generatorPids,
  };
  const cpu = {};
  await sleepUntil(goAt + options.warmupMs);
  const beforeAt = epochNow();
  let window = startCpuWindow(cpuGroups);
  await sleepUntil(beforeAt + options.beforeMs);

  const injectAt = epochNow();
  cpu.before = window.close();
  window = startCpuWindow(cpuGroups);
  progress(`during: CRASH on ${deadAppliances.join(', ')} for ${options.duringMs / 1000} s`);
  let clearAt;
  let injectAckedAt;
  try {
    // Both at once: the zone dies as a whole, not one appliance after the other.
    await Promise.all(
      deadAppliances.map((applianceId) =>
        fleetCall(fleetClient, 'injectFault', InjectFaultRequest.fromPartial({ applianceId, kind: FaultKind.CRASH, probability: 0, durationMs: 0 })),
      ),
    );
    injectAckedAt = epochNow();
    await sleepUntil(injectAt + options.duringMs);
  } finally {
    clearAt = epochNow();
    cpu.during = window.close();
    window = startCpuWindow(cpuGroups);
    await fleetCall(fleetClient, 'clearFaults', ClearFaultsRequest.fromPartial({ applianceId: '' }));
  }
  const clearAckedAt = epochNow();
  progress(`after: faults cleared, recovering for ${options.afterMs / 1000} s`);
  await sleepUntil(clearAt + options.afterMs);
  const endAt = epochNow();
  cpu.after = window.close();
  return { goAt, beforeAt, injectAt, injectAckedAt, clearAt, clearAckedAt, endAt, cpu };
}

/**
 * Failed calls grouped by status and message (the message names the
 * appliance), with when the group started and ended and how long its calls took.
 * @param {Array<{ endedAt: number, latencyMs: number, kind: string, message: string }>} failures
 * @param {number} originMs
 */
function groupFailures(failures, originMs) {
  /** @type {Map<string, any>} */
  const groups = new Map();
  for (const failure of failures) {
    const key = `${failure.kind}\u0000${failure.message}`;
    const group = groups.get(key) ?? { kind: failure.kind, message: failure.message, count: 0, firstAtMs: Infinity, lastAtMs: -Infinity, minLatencyMs: Infinity, maxLatencyMs: 0 };
    group.count++;
    group.firstAtMs = Math.min(group.firstAtMs, Math.round(failure.endedAt - originMs));
    group.lastAtMs = Math.max(group.lastAtMs, Math.round(failure.endedAt - originMs));
    group.minLatencyMs = Math.min(group.minLatencyMs, Math.round(failure.latencyMs));
    group.maxLatencyMs = Math.max(group.maxLatencyMs, Math.round(failure.latencyMs));
    groups.set(key, group);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** How regularly the fleet was polled: the resolution of every time derived from it. */
function samplerQuality(samples, failures, fromMs, toMs) {
  const inRun = samples.filter((sample) => sample.at >= fromMs && sample.at <= toMs);
  const gaps = Float64Array.from(inRun.slice(1).map((sample, index) => sample.at - inRun[index].at)).sort();
  const rtts = Float64Array.from(inRun.map((sample) => sample.rttMs)).sort();
  return {
    polls: inRun.length,
    failedPolls: failures.length,
    failedPollSamples: failures.slice(0, 3).map((failure) => failure.error),
    medianIntervalMs: percentile(gaps, 50),
    maxIntervalMs: gaps.length ? gaps[gaps.length - 1] : null,
    medianRttMs: percentile(rtts, 50),
    maxRttMs: rtts.length ? rtts[rtts.length - 1] : null,
  };
}

/**
 * Runs the failover scenario against a started broker whose fleet holds the
 * signing key on every appliance. The dead zone is the broker's local zone.
 * @param {import('./broker-process.mjs').StartedBroker} broker
 * @param {{ keyId: string }} key
 * @param {object} options
 * @param {number} options.ratePerSec        total Sign calls per second, over all generators
 * @param {number} options.generators
 * @param {number} options.callTimeoutMs     each call's deadline
 * @param {number} options.warmupMs
 * @param {number} options.beforeMs
 * @param {number} options.duringMs
 * @param {number} options.afterMs
 * @param {number} options.pollMs
 * @param {number} options.workersPerAppliance
 * @param {number} options.messageBytes
 * @param {(line: string) => void} progress
 */
export async function runFailover(broker, key, options, progress) {
  const initial = await waitForHealthyFleet(broker.address, options.workersPerAppliance, 30_000);
  const deadZone = initial.localZone;
  const deadAppliances = initial.appliances.filter((appliance) => appliance.zone === deadZone).map((appliance) => appliance.id);
  const otherZones = [...new Set(initial.appliances.map((appliance) => appliance.zone))].filter((zone) => zone !== deadZone);
  if (deadAppliances.length === 0 || otherZones.length === 0) {
    throw new Error(`the failover run needs appliances in the local zone ${deadZone} and in other zones; the broker has ${initial.appliances.map((appliance) => `${appliance.id}@${appliance.zone}`).join(', ')}`);
  }

  /** @type {Array<Record<string, unknown>>} */
  const logEvents = [];
  const stopListening = broker.onLogEntry((entry) => {
    if ((entry.level === 'warn' || entry.level === 'error') && logEvents.length < maxEvents) logEvents.push(entry);
  });
  const fleetClient = new FleetServiceClient(broker.address, credentials.createInsecure());
  const totalMs = options.warmupMs + options.beforeMs + options.duringMs + options.afterMs;
  const sampler = startFleetSampler(broker.address, { intervalMs: options.pollMs, maxRunMs: totalMs + 60_000 });
  const perGenerator = options.ratePerSec / options.generators;
  let instants;
  let driveError;
  let reports;
  try {
    ({ reports } = await runMeasuringProcesses({
      script: new URL('./grpc-load-worker.mjs', import.meta.url),
      processes: Array.from({ length: options.generators }, (_, index) => ({
        init: {
          address: broker.address,
          operation: 'sign',
          keyId: key.keyId,
          ratePerSec: perGenerator,
          // Interleaved schedules, so the generators together send evenly rather than in bursts.
          scheduleOffset: index / options.generators,
          // A little longer than the phases: the generators start a moment after the parent's clock.
          runMs: totalMs + 500,
          callTimeoutMs: options.callTimeoutMs,
          messageBytes: options.messageBytes,
        },
      })),
      baseEnv: cleanEnvironment(),
      readyTimeoutMs: 15_000,
      runTimeoutMs: totalMs + options.callTimeoutMs + 30_000,
      // Never rejects: runMeasuringProcesses awaits it only once the results are in.
      onGo: (pids) =>
        drivePhases({ broker, fleetClient, deadAppliances, options, generatorPids: pids, progress }).then(
          (driven) => (instants = driven),
          (error) => (driveError = error),
        ),
    }));
  } catch (error) {
    await sampler.stop();
    throw error;
  } finally {
    stopListening();
    fleetClient.close();
  }
  // Let the last calls land in the counters before the final polls.
  await sleep(Math.max(200, 3 * options.pollMs));
  const { samples, failures: pollFailures } = await sampler.stop();
  const final = await readFleetStatus(broker.address);
  if (driveError) throw driveError;
  if (!instants) throw new Error('the phases did not run');
  const { goAt, beforeAt, injectAt, injectAckedAt, clearAt, clearAckedAt, endAt, cpu } = instants;

  const phaseWindows = [
    { name: 'before', title: 'before', fromMs: beforeAt, toMs: injectAt },
    { name: 'during', title: `during (${deadZone} crashed)`, fromMs: injectAt, toMs: clearAt },
    { name: 'after', title: 'after (faults cleared)', fromMs: clearAt, toMs: endAt },
  ];
  const calls = summarizePhases(reports, phaseWindows);
  const series = zoneSeries(samples, deadZone);
  const phases = calls.phases.map((phase, index) => {
    const attempts = attemptsBetween(series, phase.fromMs, phase.toMs);
    const { failures, ...rest } = phase;
    return {
      ...rest,
      title: phaseWindows[index].title,
      fromMs: phase.fromMs - injectAt,
      toMs: phase.toMs - injectAt,
      offeredPerSec: options.ratePerSec,
      deadZoneAttempts: attempts.zone,
      allAttempts: attempts.all,
      deadZoneShare: attempts.share,
      cpu: withOther(cpu[phase.name]),
      failureGroups: groupFailures(failures, injectAt),
    };
  });
  const before = phases[0];
  const offDeadZone = timeOffZone(series, { fromMs: injectAt, toMs: clearAt, maxShare: failoverTargets.offDeadZoneShare });
  const backToDeadZone = timeBackToZone(series, { fromMs: clearAt, toMs: endAt, baselineShare: before.deadZoneShare, windowMs: 500 });
  const failedCalls = phases.reduce((sum, phase) => sum + phase.failed, 0) + calls.outside.failed + calls.failuresDropped;
  const during = phases[1];

  return {
    deadZone,
    deadAppliances,
    otherZones,
    instants: {
      note: 'ms relative to the InjectFault calls being sent',
      warmupStartMs: goAt - injectAt,
      beforeStartMs: beforeAt - injectAt,
      injectAckedMs: injectAckedAt === undefined ? null : injectAckedAt - injectAt,
      clearFaultsSentMs: clearAt - injectAt,
      clearFaultsAckedMs: clearAckedAt - injectAt,
      endMs: endAt - injectAt,
    },
    phases,
    outsidePhases: { ok: calls.outside.ok, failed: calls.outside.failed, errors: calls.outside.errors, failureGroups: groupFailures(calls.outside.failures, injectAt) },
    generators: {
      processes: reports.length,
      sent: reports.reduce((sum, report) => sum + report.sent, 0),
      notSent: reports.reduce((sum, report) => sum + report.notSent, 0),
      worstSendLagMs: Math.max(...reports.map((report) => report.worstSendLagMs)),
    },
    offDeadZone,
    backToDeadZone,
    latencyBy500Ms: latencyTimeline(reports, { fromMs: beforeAt, toMs: endAt, bucketMs: 500, originMs: injectAt }),
    deadZoneShareAfterClear: shareTimeline(series, { fromMs: clearAt, toMs: endAt, bucketMs: 1000, originMs: clearAt }),
    deadZoneShareAroundFault: shareTimeline(series, { fromMs: injectAt - 500, toMs: clearAt, bucketMs: 250, originMs: injectAt }),
    stateChanges: zoneStateChanges(samples.filter((sample) => sample.at >= beforeAt), deadZone, injectAt),
    brokerEvents: logEvents
      .map((entry) => ({ atMs: Date.parse(String(entry.time)) - injectAt, ...entry }))
      .filter((entry) => entry.atMs >= beforeAt - injectAt),
    sampler: samplerQuality(samples, pollFailures, beforeAt, endAt),
    fleetPolls: compactSamples(samples, injectAt),
    finalStatus: final.appliances.map((appliance) => ({
      id: appliance.id,
      zone: appliance.zone,
      state: ApplianceState[appliance.state] ?? appliance.state,
      breaker: BreakerState[appliance.breakerState] ?? appliance.breakerState,
      workers: appliance.workers,
      requestsTotal: appliance.requestsTotal,
      failuresTotal: appliance.failuresTotal,
      workerRestartsTotal: appliance.workerRestartsTotal,
      ejectionsTotal: appliance.ejectionsTotal,
      lastError: appliance.lastError,
    })),
    targets: [
      { key: 'failedCalls', name: 'failed idempotent calls (whole run)', target: `= ${failoverTargets.failedCalls}`, value: failedCalls, met: failedCalls <= failoverTargets.failedCalls },
      {
        key: 'offDeadZoneMs',
        name: `traffic off ${deadZone} (>= ${100 - failoverTargets.offDeadZoneShare * 100}% of attempts elsewhere)`,
        target: `<= ${failoverTargets.offDeadZoneMs} ms`,
        value: offDeadZone?.ms ?? null,
        met: offDeadZone !== null && offDeadZone.ms <= failoverTargets.offDeadZoneMs,
      },
      { key: 'duringP99Ms', name: 'p99 latency during the failover', target: `< ${failoverTargets.duringP99Ms} ms`, value: during.p99Ms, met: during.p99Ms !== null && during.p99Ms < failoverTargets.duringP99Ms },
    ],
  };
}
