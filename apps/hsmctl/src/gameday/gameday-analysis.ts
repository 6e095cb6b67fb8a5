import { describeFault, isBreakingFault, type FaultAction } from '../faults/fault-action.js';
import { appliancesInZone, type FleetTopology } from '../faults/fault-driver.js';
import type { CallRecord, FaultRecord } from '../load/call-history.js';
import type { FleetSample } from './fleet-sampler.js';

/** Nearest-rank percentile of ascending values; null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

/** One phase of a game day: from one step to the next. */
export interface PhaseSummary {
  name: string;
  /** Start and end relative to the start of the load, ms. */
  fromMs: number;
  toMs: number;
  /** The step that opened it (absent for the baseline). */
  step?: string;
  /** What the driver did for it, and its error if it failed. */
  driverAction?: string;
  driverError?: string;
  calls: number;
  ok: number;
  /** Failed calls by status code. */
  errors: Record<string, number>;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** Appliances the step acted on. */
  affected: string[];
  /** Their share of attempts in the phase before the step (0..1), from the broker's counters. */
  baselineShare: number | null;
  /** Their share of attempts during this phase. */
  share: number | null;
  /**
   * Breaking steps: ms from the step until the affected appliances' share of
   * attempts over the last second fell to 5 % or less; null when not seen.
   */
  shiftMs: number | null;
  /**
   * Steps that undo a fault, and zeroize: ms until every affected appliance
   * was healthy with a closed breaker and no key versions missing; null when
   * not seen before the next step.
   */
  repairMs: number | null;
}

/** Everything a game day measured. */
export interface GameDayAnalysis {
  phases: PhaseSummary[];
  total: { calls: number; ok: number; errors: Record<string, number>; p50Ms: number | null; p99Ms: number | null };
}

/** Appliances an action acts on. */
export function affectedBy(action: FaultAction, topology: FleetTopology): string[] {
  if ('appliance' in action) return [action.appliance];
  if ('zone' in action) return appliancesInZone(topology, action.zone);
  return action.kind === 'clear' ? topology.appliances.map((appliance) => appliance.id) : [];
}

function callStats(calls: readonly CallRecord[]): Omit<GameDayAnalysis['total'], never> & { maxMs: number | null } {
  const latencies = calls.map((call) => call.endMs - call.startMs).sort((a, b) => a - b);
  const errors: Record<string, number> = {};
  for (const call of calls) if (call.code !== 'OK') errors[call.code] = (errors[call.code] ?? 0) + 1;
  return {
    calls: calls.length,
    ok: calls.filter((call) => call.code === 'OK').length,
    errors,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? null,
  };
}

function attempts(sample: FleetSample | undefined, ids: ReadonlySet<string>): { part: number; all: number } {
  let part = 0;
  let all = 0;
  for (const appliance of sample?.appliances ?? []) {
    all += appliance.requestsTotal;
    if (ids.has(appliance.id)) part += appliance.requestsTotal;
  }
  return { part, all };
}

/** The affected appliances' share of attempts between two instants (wall ms), from the samples. */
function shareBetween(samples: readonly FleetSample[], ids: ReadonlySet<string>, fromMs: number, toMs: number): number | null {
  const answered = samples.filter((sample) => sample.answered);
  const first = answered.find((sample) => sample.atMs >= fromMs);
  const last = [...answered].reverse().find((sample) => sample.atMs <= toMs);
  if (first === undefined || last === undefined || last.atMs <= first.atMs) return null;
  const a = attempts(first, ids);
  const b = attempts(last, ids);
  return b.all - a.all > 0 ? (b.part - a.part) / (b.all - a.all) : null;
}

function shiftTime(samples: readonly FleetSample[], ids: ReadonlySet<string>, stepMs: number, endMs: number): number | null {
  const answered = samples.filter((sample) => sample.answered);
  for (const sample of answered) {
    if (sample.atMs <= stepMs || sample.atMs > endMs) continue;
    const windowStart = Math.max(stepMs, sample.atMs - 1000);
    const earlier = answered.find((candidate) => candidate.atMs >= windowStart);
    if (earlier === undefined || earlier === sample) continue;
    const a = attempts(earlier, ids);
    const b = attempts(sample, ids);
    if (b.all - a.all > 0 && b.part - a.part <= 0.05 * (b.all - a.all)) return sample.atMs - stepMs;
  }
  return null;
}

function repairTime(samples: readonly FleetSample[], ids: ReadonlySet<string>, stepMs: number, endMs: number): number | null {
  for (const sample of samples) {
    if (sample.atMs <= stepMs || sample.atMs > endMs || !sample.answered) continue;
    const mine = sample.appliances.filter((appliance) => ids.has(appliance.id));
    if (mine.length === 0) continue;
    if (mine.every((appliance) => appliance.state === 'HEALTHY' && appliance.breaker === 'CLOSED' && appliance.keysMissing === 0)) {
      return sample.atMs - stepMs;
    }
  }
  return null;
}

/**
 * Splits a game day into phases at its steps and measures each: calls,
 * errors by code, p50/p99 latency, traffic shift away from what the step
 * broke and repair of what it brought back. Times in the records are wall
 * clock; `originMs` is the wall-clock start of the load.
 */
export function analyseGameDay(input: {
  originMs: number;
  durationMs: number;
  calls: readonly CallRecord[];
  faults: readonly FaultRecord[];
  steps: readonly { atMs: number; action: FaultAction; phase?: string; explanation: string }[];
  samples: readonly FleetSample[];
  topology: FleetTopology;
}): GameDayAnalysis {
  const { originMs } = input;
  // Steps at the same instant (a zone brought back appliance by appliance)
  // open one phase together.
  const groups: { atMs: number; indexes: number[] }[] = [];
  input.steps.forEach((step, index) => {
    const last = groups.at(-1);
    if (last !== undefined && last.atMs === step.atMs) last.indexes.push(index);
    else groups.push({ atMs: step.atMs, indexes: [index] });
  });
  const boundaries = [0, ...groups.map((group) => group.atMs), input.durationMs];
  const phases: PhaseSummary[] = [];
  for (let index = 0; index < boundaries.length - 1; index += 1) {
    const fromMs = boundaries[index] ?? 0;
    const toMs = boundaries[index + 1] ?? input.durationMs;
    const group = index === 0 ? undefined : groups[index - 1];
    const steps = (group?.indexes ?? []).map((at) => ({ ...(input.steps[at]), at }));
    // Calls belong to the phase in which they started; the last phase also
    // takes the few the load issued between the end and its stop.
    const last = index === boundaries.length - 2;
    const calls = input.calls.filter(
      (call) => call.startMs - originMs >= fromMs && (last || call.startMs - originMs < toMs),
    );
    const stats = callStats(calls);
    const affected = [...new Set(steps.flatMap((step) => affectedBy(step.action, input.topology)))];
    const ids = new Set(affected);
    // The timeline carries steps out one by one, so the n-th fault record is the n-th step.
    const failed = steps.map((step) => input.faults[step.at]?.error).filter((error): error is string => error !== undefined);
    const stepWallMs = originMs + fromMs;
    const previousFrom = originMs + (boundaries[index - 1] ?? 0);
    const kinds = steps.map((step) => step.action.kind);
    const breaking = steps.some((step) => isBreakingFault(step.action) && step.action.kind !== 'restartBroker');
    const repairing = steps.some((step) => !isBreakingFault(step.action)) || kinds.includes('zeroize') || kinds.includes('restartBroker');
    const repairIds = kinds.includes('restartBroker') ? new Set(input.topology.appliances.map((appliance) => appliance.id)) : ids;
    const first = steps[0];
    phases.push({
      name: first === undefined ? 'baseline' : (first.phase ?? steps.map((step) => describeFault(step.action)).join(', ')),
      fromMs,
      toMs,
      ...(first === undefined
        ? {}
        : {
            step: steps.map((step) => describeFault(step.action)).join(', '),
            driverAction: steps.map((step) => step.explanation).join('; '),
          }),
      ...(failed.length === 0 ? {} : { driverError: failed.join('; ') }),
      ...stats,
      affected,
      baselineShare: affected.length === 0 || index === 0 ? null : shareBetween(input.samples, ids, previousFrom, stepWallMs),
      share: affected.length === 0 ? null : shareBetween(input.samples, ids, stepWallMs, originMs + toMs),
      shiftMs: breaking && affected.length > 0 ? shiftTime(input.samples, ids, stepWallMs, originMs + toMs) : null,
      repairMs: repairing ? repairTime(input.samples, repairIds, stepWallMs, originMs + toMs) : null,
    });
  }
  const total = callStats(input.calls);
  return { phases, total: { calls: total.calls, ok: total.ok, errors: total.errors, p50Ms: total.p50Ms, p99Ms: total.p99Ms } };
}
