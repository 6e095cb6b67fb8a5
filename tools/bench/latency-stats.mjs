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

  /** @param {number} startedAt @param {number} endedAt */
  success(startedAt, endedAt) {
    if (endedAt < this.startsAt || endedAt > this.endsAt) return;
    this.ok++;
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
