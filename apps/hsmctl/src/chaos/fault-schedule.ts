import { isApplianceFaultKind, type FaultAction, type FaultKindName } from '../faults/fault-action.js';
import type { FleetTopology } from '../faults/fault-driver.js';
import { undoOf, type TimedFault } from '../faults/timed-fault.js';
import { SeededRandom } from './seeded-random.js';

/** The breaking faults a schedule draws from, unless told otherwise. */
export const scheduleFaultKinds: readonly FaultKindName[] = [
  'kill',
  'stop',
  'pause',
  'partition',
  'slow',
  'zeroize',
  'killZone',
  'partitionZone',
];

/** What a schedule is drawn from. */
export interface ScheduleOptions {
  seed: number;
  durationMs: number;
  topology: FleetTopology;
  /** Fault kinds to draw (those the driver cannot do must be left out). */
  kinds: readonly FaultKindName[];
  /** Allow faults in more than one zone at the same time (default: never). */
  multipleZones?: boolean;
  /** Quiet time at the start and end of the run, ms (default 3000 each): a baseline, then recovery. */
  quietMs?: number;
  /** Gap between the start of one fault and the next, ms (default 1000 to 5000). */
  gapMs?: { min: number; max: number };
  /** How long a fault lasts before it is undone, ms (default 2000 to 8000). */
  faultMs?: { min: number; max: number };
  /** Delays drawn for `slow`, ms (default 50 to 400). */
  slowMs?: { min: number; max: number };
}

/**
 * Draws a random schedule of faults from a seed: the same seed, duration,
 * topology and kinds always give the same schedule. Each fault is undone
 * after a drawn time, and everything is undone before the quiet end. An
 * appliance is never given a second fault while one is in force, and unless
 * `multipleZones` is set, faults in force at any moment all lie in one zone,
 * so that every key (kept in at least two zones) stays reachable.
 */
export function drawFaultSchedule(options: ScheduleOptions): TimedFault[] {
  const random = new SeededRandom(options.seed);
  const quiet = options.quietMs ?? 3000;
  const gap = options.gapMs ?? { min: 1000, max: 5000 };
  const length = options.faultMs ?? { min: 2000, max: 8000 };
  const slow = options.slowMs ?? { min: 50, max: 400 };
  const zones = [...new Set(options.topology.appliances.map((appliance) => appliance.zone))].sort();
  const lastEnd = options.durationMs - quiet;
  const steps: TimedFault[] = [];
  /** Faults in force: which appliances, in which zone, until when. */
  const active: { appliances: string[]; zone: string; untilMs: number }[] = [];
  if (options.kinds.length === 0 || zones.length === 0) return steps;

  for (let at = quiet + random.integer(0, gap.max - gap.min); at < lastEnd; at += random.integer(gap.min, gap.max)) {
    for (let index = active.length - 1; index >= 0; index -= 1) {
      if ((active[index]?.untilMs ?? 0) <= at) active.splice(index, 1);
    }
    const kind = random.pick(options.kinds);
    const busy = new Set(active.flatMap((fault) => fault.appliances));
    const brokenZones = new Set(active.map((fault) => fault.zone));
    const allowedZones =
      options.multipleZones === true || brokenZones.size === 0 ? zones : zones.filter((zone) => brokenZones.has(zone));
    const duration = Math.min(random.integer(length.min, length.max), lastEnd - at);
    if (duration <= 0) break;
    let action: FaultAction;
    let appliances: string[] = [];
    let zone = '';
    if (kind === 'killZone' || kind === 'partitionZone') {
      // A whole zone: only when nothing else in the fleet is broken, unless told otherwise.
      const candidates = allowedZones.filter((name) =>
        options.topology.appliances.every((appliance) => appliance.zone !== name || !busy.has(appliance.id)),
      );
      const free = options.multipleZones === true ? candidates : brokenZones.size === 0 ? candidates : [];
      if (free.length === 0) continue;
      zone = random.pick(free);
      appliances = options.topology.appliances.filter((appliance) => appliance.zone === zone).map((appliance) => appliance.id);
      action = { kind, zone };
    } else if (isApplianceFaultKind(kind)) {
      const candidates = options.topology.appliances.filter(
        (appliance) => allowedZones.includes(appliance.zone) && !busy.has(appliance.id),
      );
      if (candidates.length === 0) continue;
      const target = random.pick(candidates);
      zone = target.zone;
      appliances = [target.id];
      action =
        kind === 'slow'
          ? { kind, appliance: target.id, ms: random.integer(slow.min, slow.max) }
          : { kind, appliance: target.id };
    } else if (kind === 'restartBroker') {
      // Breaks no zone: the broker comes back by itself.
      if (active.length > 0) continue;
      action = { kind };
    } else {
      // `clear` and the undoing kinds are never drawn: they follow from what was broken.
      continue;
    }
    steps.push({ atMs: at, action });
    const undo = undoOf(action, options.topology);
    if (undo.length > 0) {
      for (const step of undo) steps.push({ atMs: at + duration, action: step });
      active.push({ appliances, zone, untilMs: at + duration });
    }
  }
  return steps.sort((a, b) => a.atMs - b.atMs);
}
