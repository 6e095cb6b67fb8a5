import type { ApplianceCallSample, Fleet, FleetControlEvent } from '@hsm-broker/fleet';
import type { ReconcileReport, ReconcileTrigger } from '@hsm-broker/keys';

/** One entry of the dashboard's recent-events list. */
export interface FleetEvent {
  at: number;
  /** `ejected`, `half-open`, `recovered`, `drained`, `fenced`, `fault-injected`, `repaired`, … */
  kind: string;
  /** The appliance or zone concerned; empty for the whole fleet. */
  target: string;
  text: string;
  /** How many times it happened in a row (a breaker that keeps failing its trials); `at` is the latest. */
  count: number;
}

/** Recent traffic of one appliance. */
export interface ApplianceTraffic {
  /** Caller calls finished per second in each bucket, oldest first. */
  series: number[];
  /** Caller calls per second over the last complete bucket. */
  rps: number;
  /** 99th percentile latency of the last minute's caller calls, in ms (0 without calls). */
  p99Ms: number;
}

/** Width of one traffic bucket. */
export const bucketMs = 5000;
/** Buckets kept: five minutes. */
const bucketCount = 60;
const latencyWindowMs = 60_000;
const latencySamples = 2048;
const eventsKept = 100;

interface Counts {
  /** Start of the newest bucket. */
  start: number;
  buckets: number[];
  latencies: { at: number; ms: number }[];
}

/**
 * What the dashboard and `fleet watch` show besides the fleet snapshot:
 * per-appliance traffic over the last minutes, recent latency, and a log of
 * recent events (ejections, recoveries, drains, fences, injected faults,
 * repairs), all taken from the fleet's and reconciler's own events.
 */
export class FleetActivity {
  readonly #counts = new Map<string, Counts>();
  readonly #events: FleetEvent[] = [];
  readonly #now: () => number;
  readonly #changeListeners: (() => void)[] = [];

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Subscribes to a fleet's events. */
  observe(fleet: Fleet): void {
    for (const appliance of fleet.appliances) {
      appliance.onCallFinished((sample) => this.record(sample));
      appliance.breaker.onStateChange((state) => {
        if (state === 'open') this.note('ejected', appliance.id, `${appliance.id} ejected: breaker opened (${appliance.stats.lastError || 'appliance faults'})`);
        else if (state === 'half-open') this.note('half-open', appliance.id, `${appliance.id} on trial: breaker half-open`);
        else this.note('recovered', appliance.id, `${appliance.id} recovered: breaker closed`);
      });
    }
    fleet.onControl((event) => this.#control(event));
  }

  /** Records a reconciliation run that changed something or failed. */
  reconciled(trigger: ReconcileTrigger, report: ReconcileReport): void {
    if (report.copied > 0 || report.lost > 0) {
      this.note('repaired', '', `reconciler (${trigger}) copied ${String(report.copied)} version(s), forgot ${String(report.lost)} lost replica(s)`);
    }
    if (report.failures.length > 0) this.note('repair-failed', '', `reconciler (${trigger}): ${String(report.failures.length)} failure(s)`);
    if (report.orphans.length > 0) this.note('orphans', '', `reconciler (${trigger}) found ${String(report.orphans.length)} orphan object(s)`);
  }

  /** Counts one finished appliance call (background calls are not traffic). */
  record(sample: ApplianceCallSample): void {
    if (sample.background) return;
    const counts = this.#advance(sample.applianceId);
    const last = counts.buckets.length - 1;
    counts.buckets[last] = (counts.buckets[last] ?? 0) + 1;
    counts.latencies.push({ at: this.#now(), ms: sample.latencyMs });
    if (counts.latencies.length > latencySamples) counts.latencies.splice(0, counts.latencies.length - latencySamples);
  }

  /** Adds an event to the recent list. */
  note(kind: string, target: string, text: string): void {
    const last = this.#events[this.#events.length - 1];
    // A breaker failing trial after trial would otherwise push everything else off the list.
    const repeats = this.#events.length >= 2 ? this.#events[this.#events.length - 2] : undefined;
    if (last && last.kind === kind && last.target === target) {
      last.at = this.#now();
      last.text = text;
      last.count++;
    } else if (last && repeats && repeats.kind === kind && repeats.target === target && last.target === target && (last.kind === 'half-open' || kind === 'half-open')) {
      // ejected → half-open → ejected → …: keep one of each, counting.
      this.#events.pop();
      repeats.at = this.#now();
      repeats.text = text;
      repeats.count++;
      this.#events.push(last);
    } else {
      this.#events.push({ at: this.#now(), kind, target, text, count: 1 });
    }
    if (this.#events.length > eventsKept) this.#events.splice(0, this.#events.length - eventsKept);
    for (const listener of this.#changeListeners) listener();
  }

  /** Called after each new event, so watchers can show it at once rather than at their next tick. Must not throw. */
  onEvent(listener: () => void): void {
    this.#changeListeners.push(listener);
  }

  /** Recent events, newest first. */
  events(limit = 30): FleetEvent[] {
    return this.#events.slice(-limit).reverse();
  }

  /** Traffic of one appliance. */
  traffic(applianceId: string): ApplianceTraffic {
    const counts = this.#advance(applianceId);
    const series = counts.buckets.slice(0, -1).map((n) => n / (bucketMs / 1000));
    const since = this.#now() - latencyWindowMs;
    const recent = counts.latencies.filter((sample) => sample.at >= since).map((sample) => sample.ms).sort((a, b) => a - b);
    const p99 = recent.length === 0 ? 0 : (recent[Math.min(recent.length - 1, Math.ceil(recent.length * 0.99) - 1)] ?? 0);
    return { series, rps: series[series.length - 1] ?? 0, p99Ms: p99 };
  }

  #advance(applianceId: string): Counts {
    const now = this.#now();
    const aligned = now - (now % bucketMs);
    let counts = this.#counts.get(applianceId);
    if (!counts) {
      counts = { start: aligned, buckets: new Array<number>(bucketCount + 1).fill(0), latencies: [] };
      this.#counts.set(applianceId, counts);
    }
    const steps = Math.min(bucketCount + 1, Math.floor((aligned - counts.start) / bucketMs));
    for (let i = 0; i < steps; i++) {
      counts.buckets.shift();
      counts.buckets.push(0);
    }
    counts.start = aligned;
    return counts;
  }

  #control(event: FleetControlEvent): void {
    const target = event.target || 'every appliance';
    const texts: Record<FleetControlEvent['kind'], string> = {
      drained: `${target} drained by an operator`,
      undrained: `${target} returned to rotation`,
      fenced: `zone ${target} fenced`,
      unfenced: `zone ${target} unfenced`,
      'fault-injected': `${event.fault ?? ''} fault injected on ${target}`,
      'faults-cleared': `faults cleared on ${target}`,
    };
    this.note(event.kind, event.target, texts[event.kind]);
  }
}
