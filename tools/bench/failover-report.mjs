// Renders the failover run for people: the phases, the targets, how the
// numbers were measured, and what the dead zone's appliances went through.
import { count, ms, table } from './bench-report.mjs';

const share = (value) => (value === null || value === undefined ? '-' : `${(100 * value).toFixed(value > 0 && value < 0.01 ? 2 : 1)}%`);
const percent = (value) => (value === null || value === undefined ? '-' : `${Math.round(value)}%`);
const upTo = (value) => (value === null || value === undefined ? 'not seen' : `<= ${Math.round(value).toLocaleString('en-US')} ms`);

/** One row per phase: calls, failures, rate, latency, and where the attempts went. */
export function failoverPhaseTable(failover) {
  return table(
    ['phase', 'seconds', 'calls ok', 'failed', 'ops/s', 'p50 ms', 'p99 ms', 'max ms', `${failover.deadZone} attempts`, 'all attempts', `${failover.deadZone} share`, 'machine CPU', 'other CPU'],
    failover.phases.map((phase) => [
      phase.title,
      phase.seconds.toFixed(2),
      count(phase.ok),
      String(phase.failed),
      count(phase.opsPerSec),
      ms(phase.p50Ms),
      ms(phase.p99Ms),
      ms(phase.maxMs),
      count(phase.deadZoneAttempts),
      count(phase.allAttempts),
      share(phase.deadZoneShare),
      percent(phase.cpu.machine),
      percent(phase.cpu.other),
    ]),
  );
}

/** The targets beside the results. */
export function failoverTargetTable(failover) {
  const shown = (target) => {
    if (target.value === null || target.value === undefined) return 'not reached';
    if (target.key === 'offDeadZoneMs') return `${upTo(target.value)} (>= ${Math.round(failover.offDeadZone?.lowerBoundMs ?? 0)} ms)`;
    if (target.key === 'duringP99Ms') return `${ms(target.value)} ms`;
    return String(target.value);
  };
  return table(
    ['target', 'goal', 'result', 'met'],
    failover.targets.map((target) => [target.name, target.target, shown(target), target.met ? 'yes' : 'NO']),
  );
}

/** The routing settings the broker ran with, in one line. */
export function routingLine(settings) {
  if (!settings || 'error' in settings) return `routing: broker defaults (could not read them: ${settings?.error ?? 'unknown'})`;
  const r = settings.routing;
  return (
    `routing (broker defaults, as its loadConfig resolves them): callMs ${settings.timeouts.callMs}, consecutiveFailures ${r.consecutiveFailures}, ` +
    `openMs ${r.openMs} doubling to ${r.maxOpenMs}, healthIntervalMs ${r.healthIntervalMs}, probeTimeoutMs ${r.probeTimeoutMs}, slowStartMs ${r.slowStartMs}, ` +
    `maxAttempts ${r.maxAttempts}, retry budget ${Math.round(Number(r.retryBudgetRatio) * 100)}% + ${r.retryBudgetMinPerSecond}/s, hedging ${r.hedgeDelayMs ? `${r.hedgeDelayMs} ms` : 'off'}`
  );
}

/** p99 per 500 ms from just before the fault to a little after the clear: when the slow calls happened. */
export function latencyTimelineLines(failover) {
  const from = -1000;
  const to = failover.instants.clearFaultsSentMs + 2000;
  const buckets = failover.latencyBy500Ms.filter((bucket) => bucket.fromMs >= from && bucket.fromMs < to);
  const lines = [];
  for (let i = 0; i < buckets.length; i += 8) {
    lines.push(
      buckets
        .slice(i, i + 8)
        .map((bucket) => `${`${bucket.fromMs >= 0 ? '+' : ''}${(bucket.fromMs / 1000).toFixed(1)}s`.padStart(6)} ${ms(bucket.p99Ms).padStart(5)}${bucket.failed ? ` (${bucket.failed} failed)` : ''}`)
        .join(' |'),
    );
  }
  return lines;
}

/** Recovery after ClearFaults, which has no target but says how the zone returns. */
export function recoveryLines(failover) {
  const back = failover.backToDeadZone;
  const before = failover.phases[0];
  const zone = failover.deadZone;
  return [
    `traffic back on ${zone} after ClearFaults (no target): first attempt ${upTo(back.firstAttemptMs)}; ` +
      `half of its before share (${share(before.deadZoneShare)}) ${upTo(back.halfShareMs)}; 90% of it ${upTo(back.ninetyPercentShareMs)} (500 ms windows)`,
    `${zone} share of attempts per second after ClearFaults: ${failover.deadZoneShareAfterClear.map((bucket) => share(bucket.share)).join('  ')}`,
  ];
}

/** How the numbers were taken, printed with them. */
export function methodLines(failover, settings) {
  const s = failover.sampler;
  return [
    `- Load: ${count(settings.ratePerSec)} Sign calls/s in total, open loop (sent on schedule whatever the answers) from ${settings.generators} grpc-js processes,`,
    `  each call with a ${settings.callTimeoutMs} ms deadline. A call belongs to the phase in which it ended; its latency runs from when it was`,
    `  due, so a stalled generator shows as latency (worst send lag here: ${ms(failover.generators.worstSendLagMs)} ms; calls not sent: ${failover.generators.notSent}).`,
    `- "${failover.deadZone} attempts/share" and both failover times come from the broker's own counters: FleetService.GetFleetStatus polled every`,
    `  ${settings.pollMs} ms (median interval ${ms(s.medianIntervalMs)} ms, worst ${ms(s.maxIntervalMs)} ms; median round trip ${ms(s.medianRttMs)} ms; ${s.failedPolls} failed polls).`,
    `  requests_total counts attempts on an appliance, including attempts that failed there and were retried elsewhere,`,
    `  so the share is the share of traffic that still reached the zone. Attempts > calls when calls were retried.`,
    `- Time off ${failover.deadZone}: from sending InjectFault to the first poll from which on, until ClearFaults, ${failover.deadZone} received at most`,
    `  1% of all attempts. It is an upper bound at poll resolution; the poll before gives the lower bound in brackets.`,
    `- Time back: from sending ClearFaults to the first poll that saw an attempt on ${failover.deadZone}, and to the first poll at which`,
    `  its share over the preceding 500 ms reached half / 90% of its share in the before phase.`,
  ];
}

/**
 * The dead zone's appliances as the polls saw them: state, breaker, workers.
 * @param {number} limit lines to print; the JSON has them all
 */
export function stateChangeLines(failover, limit = 24) {
  const changes = failover.stateChanges;
  const lines = changes.slice(0, limit).map((change) => `${`${change.atMs >= 0 ? '+' : ''}${Math.round(change.atMs)} ms`.padStart(10)}  ${change.appliance}  ${change.state}${change.initial ? '  (first poll)' : ''}`);
  if (changes.length > limit) lines.push(`${' '.repeat(10)}  … ${changes.length - limit} more changes in the JSON`);
  return lines;
}

/** Failed calls per phase with their messages. */
export function failoverErrorLines(failover) {
  const lines = [];
  for (const phase of [...failover.phases, { title: 'outside the phases (warm-up, tail)', ...failover.outsidePhases }]) {
    if (!phase.failed) continue;
    lines.push(`${phase.title}: ${phase.failed} failed ${JSON.stringify(phase.errors)}`);
    for (const group of phase.failureGroups.slice(0, 6)) {
      lines.push(`  ${String(group.count).padStart(6)} × ${group.kind}: ${group.message}`);
      lines.push(`         ended ${group.firstAtMs} to ${group.lastAtMs} ms from InjectFault, after ${group.minLatencyMs}-${group.maxLatencyMs} ms`);
    }
    if (phase.failureGroups.length > 6) lines.push(`         … ${phase.failureGroups.length - 6} more kinds in the JSON`);
  }
  return lines;
}

/** Broker warnings and errors during the run (breaker changes, faults), relative to InjectFault. */
export function brokerEventLines(failover, limit = 20) {
  const events = failover.brokerEvents;
  const describe = ({ atMs, level, message, ...fields }) => {
    delete fields.time;
    return `${`${atMs >= 0 ? '+' : ''}${Math.round(atMs)} ms`.padStart(10)}  ${level}  ${message} ${JSON.stringify(fields)}`;
  };
  const lines = events.slice(0, limit).map(describe);
  if (events.length > limit) lines.push(`${' '.repeat(10)}  … ${events.length - limit} more in the JSON`);
  return lines;
}
