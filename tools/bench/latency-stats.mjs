// Turns what the measuring processes report into the numbers the bench prints.
// Every process sends its raw latencies (ms) for the measured window; they are
// merged before taking percentiles, because averaging per-process percentiles
// would hide one slow process.

/**
 * Nearest-rank percentile of ascending values.
 * @param {Float64Array} sorted
 * @param {number} p 0 < p <= 100
 * @returns {number | null}
 */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

/**
 * Merges the reports of the processes of one scenario.
 * @param {Array<{ ok: number, latencies: Float64Array, errors: Record<string, number>, errorSamples: string[] }>} reports
 * @param {number} durationMs the measured window
 */
export function summarize(reports, durationMs) {
  const total = reports.reduce((sum, report) => sum + report.latencies.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const report of reports) {
    all.set(report.latencies, at);
    at += report.latencies.length;
  }
  all.sort();
  const errors = {};
  for (const report of reports) {
    for (const [kind, count] of Object.entries(report.errors)) errors[kind] = (errors[kind] ?? 0) + count;
  }
  const ok = reports.reduce((sum, report) => sum + report.ok, 0);
  return {
    processes: reports.length,
    ok,
    opsPerSec: ok / (durationMs / 1000),
    p50Ms: percentile(all, 50),
    p99Ms: percentile(all, 99),
    maxMs: all.length ? all[all.length - 1] : null,
    errorCount: Object.values(errors).reduce((sum, count) => sum + count, 0),
    errors,
    errorSamples: [...new Set(reports.flatMap((report) => report.errorSamples))].slice(0, 5),
  };
}

/**
 * Collects results of calls into a measured window that starts after a
 * warm-up. A call counts when it completes inside the window, whenever it
 * started, so throughput is completions per second of window.
 */
export class WindowRecorder {
  /** @param {number} startsAt performance.now() value  @param {number} endsAt */
  constructor(startsAt, endsAt) {
    this.startsAt = startsAt;
    this.endsAt = endsAt;
    this.ok = 0;
    /** @type {number[]} */
    this.latencies = [];
    /** @type {Record<string, number>} */
    this.errors = {};
    /** @type {string[]} */
    this.errorSamples = [];
  }

  /**
   * @param {number} startedAt @param {number} endedAt
   * @param {number} [items] operations the call completed (a batch's items); its latency counts once
   */
  success(startedAt, endedAt, items = 1) {
    if (endedAt < this.startsAt || endedAt > this.endsAt) return;
    this.ok += items;
    this.latencies.push(endedAt - startedAt);
  }

  /**
   * Errors are counted over the whole run, warm-up included: a bench that
   * fails while warming up has something to say.
   * @param {string} kind @param {string} message
   */
  failure(kind, message) {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
    if (this.errorSamples.length < 3) this.errorSamples.push(`${kind}: ${message}`);
  }

  /** The report sent to the parent over IPC. */
  report() {
    return { ok: this.ok, latencies: Float64Array.from(this.latencies), errors: this.errors, errorSamples: this.errorSamples };
  }
}

/** Milliseconds since the epoch with sub-millisecond resolution: comparable across processes. */
export const epochNow = () => performance.timeOrigin + performance.now();

/**
 * Records every call of a run, with when it was meant to start and when it
 * ended (epoch ms), so the parent can cut one continuous run into phases
 * (before, during and after a failure) after the fact. Latency is measured
 * from the moment the call was due, not from when the generator got round
 * to sending it: a stalled generator then shows up as latency instead of
 * silently sending less (coordinated omission).
 */
export class CallLog {
  /** @param {number} maxFailures failures kept with their messages; more are only counted */
  constructor(maxFailures = 10_000) {
    this.maxFailures = maxFailures;
    /** @type {number[]} */
    this.endedAt = [];
    /** @type {number[]} */
    this.latencies = [];
    /** @type {Array<{ endedAt: number, latencyMs: number, kind: string, message: string }>} */
    this.failures = [];
    this.failuresDropped = 0;
  }

  /** @param {number} dueAt @param {number} endedAt */
  success(dueAt, endedAt) {
    this.endedAt.push(endedAt);
    this.latencies.push(endedAt - dueAt);
  }

  /** @param {number} dueAt @param {number} endedAt @param {string} kind @param {string} message */
  failure(dueAt, endedAt, kind, message) {
    if (this.failures.length < this.maxFailures) this.failures.push({ endedAt, latencyMs: endedAt - dueAt, kind, message });
    else this.failuresDropped++;
  }

  /**
   * The report sent to the parent over IPC.
   * @param {Record<string, unknown>} extra
   */
  report(extra = {}) {
    return {
      endedAt: Float64Array.from(this.endedAt),
      latencies: Float64Array.from(this.latencies),
      failures: this.failures,
      failuresDropped: this.failuresDropped,
      ...extra,
    };
  }
}

/**
 * Cuts the call logs of several processes into phases by completion time
 * (a call belongs to the phase in which it ended) and summarises each.
 * Calls that ended outside every phase (warm-up, or after the last phase)
 * are summarised as `outside`, so no failure goes unreported.
 * @param {Array<ReturnType<CallLog['report']>>} reports
 * @param {Array<{ name: string, fromMs: number, toMs: number }>} phases epoch ms, [from, to)
 */
export function summarizePhases(reports, phases) {
  const buckets = phases.map((phase) => ({ ...phase, latencies: /** @type {number[]} */ ([]), failures: /** @type {any[]} */ ([]) }));
  const outside = { latencies: /** @type {number[]} */ ([]), failures: /** @type {any[]} */ ([]) };
  const bucketOf = (at) => buckets.find((bucket) => at >= bucket.fromMs && at < bucket.toMs) ?? outside;
  for (const report of reports) {
    for (let i = 0; i < report.endedAt.length; i++) bucketOf(report.endedAt[i]).latencies.push(report.latencies[i]);
    for (const failure of report.failures) bucketOf(failure.endedAt).failures.push(failure);
  }
  const summary = (bucket, seconds) => {
    const sorted = Float64Array.from(bucket.latencies).sort();
    /** @type {Record<string, number>} */
    const errors = {};
    for (const failure of bucket.failures) errors[failure.kind] = (errors[failure.kind] ?? 0) + 1;
    return {
      ok: sorted.length,
      opsPerSec: seconds > 0 ? sorted.length / seconds : null,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1] : null,
      failed: bucket.failures.length,
      errors,
      failures: [...bucket.failures].sort((a, b) => a.endedAt - b.endedAt),
    };
  };
  return {
    phases: buckets.map((bucket) => ({ name: bucket.name, fromMs: bucket.fromMs, toMs: bucket.toMs, seconds: (bucket.toMs - bucket.fromMs) / 1000, ...summary(bucket, (bucket.toMs - bucket.fromMs) / 1000) })),
    outside: summary(outside, 0),
    failuresDropped: reports.reduce((sum, report) => sum + report.failuresDropped, 0),
  };
}

/**
 * Latency and failures in consecutive buckets of `bucketMs` by completion
 * time, each bucket's start relative to `originMs`: shows when in a phase
 * the slow calls happened.
 * @param {Array<ReturnType<CallLog['report']>>} reports
 * @param {{ fromMs: number, toMs: number, bucketMs: number, originMs: number }} window
 */
export function latencyTimeline(reports, { fromMs, toMs, bucketMs, originMs }) {
  const count = Math.max(0, Math.ceil((toMs - fromMs) / bucketMs));
  const buckets = Array.from({ length: count }, () => ({ latencies: /** @type {number[]} */ ([]), failed: 0 }));
  const indexOf = (at) => (at >= fromMs && at < toMs ? Math.floor((at - fromMs) / bucketMs) : -1);
  for (const report of reports) {
    for (let i = 0; i < report.endedAt.length; i++) {
      const index = indexOf(report.endedAt[i]);
      if (index >= 0) buckets[index].latencies.push(report.latencies[i]);
    }
    for (const failure of report.failures) {
      const index = indexOf(failure.endedAt);
      if (index >= 0) buckets[index].failed++;
    }
  }
  return buckets.map((bucket, index) => {
    const sorted = Float64Array.from(bucket.latencies).sort();
    return {
      fromMs: Math.round(fromMs + index * bucketMs - originMs),
      ok: sorted.length,
      failed: bucket.failed,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1] : null,
    };
  });
}
