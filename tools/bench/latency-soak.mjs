// Latency at a fixed share of peak (open loop), and the broker's memory
// before and after a soak at peak.
import { measureUnary } from './broker-runs.mjs';
import { residentBytes } from './process-cpu.mjs';

/**
 * Open-loop unary load at `fraction` of `peakOpsPerSec`: h2load sends on a
 * fixed schedule per connection (--rps) with many streams allowed, so a slow
 * answer shows as latency rather than as fewer calls while streams remain.
 * @param {import('./broker-process.mjs').StartedBroker} broker
 * @param {import('./bench-operations.mjs').BenchOperation} operation
 * @param {import('./bench-operations.mjs').BenchSamples} samples
 * @param {number} peakOpsPerSec
 * @param {number} fraction
 * @param {import('./broker-runs.mjs').LoadSettings} settings
 */
export async function measureLatencyAt(broker, operation, samples, peakOpsPerSec, fraction, settings) {
  const ratePerSec = Math.max(settings.h2load.clients, Math.round(peakOpsPerSec * fraction));
  const run = await measureUnary(broker, operation, samples, settings, { ratePerSec, streams: 256 });
  return { fraction, targetRatePerSec: ratePerSec, ...run };
}

/**
 * Peak unary load for `soakS` seconds, sampling the broker main process's
 * RSS (and its workers' sum) every few seconds. RSS "at start" is read
 * before the soak's load begins.
 * @param {import('./broker-process.mjs').StartedBroker} broker
 * @param {import('./bench-operations.mjs').BenchOperation} operation
 * @param {import('./bench-operations.mjs').BenchSamples} samples
 * @param {number} soakS
 * @param {import('./broker-runs.mjs').LoadSettings} settings
 */
export async function soakAtPeak(broker, operation, samples, soakS, settings) {
  const pid = /** @type {number} */ (broker.child.pid);
  const startedAt = performance.now();
  const read = () => ({
    atS: Number(((performance.now() - startedAt) / 1000).toFixed(1)),
    mainBytes: residentBytes(pid),
    workerBytes: broker.workerPids().reduce((sum, worker) => sum + (residentBytes(worker) ?? 0), 0),
  });
  const samplesTaken = [read()];
  const every = Math.max(1000, Math.min(10_000, (soakS * 1000) / 30));
  const timer = setInterval(() => samplesTaken.push(read()), every);
  try {
    const run = await measureUnary(broker, operation, samples, { ...settings, warmupS: 0 }, { durationS: soakS });
    samplesTaken.push(read());
    return { durationS: soakS, operation: operation.id, run, rss: samplesTaken };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Whether RSS stayed flat: the main process's growth from the middle of the
 * soak to its end, as a share of its size in the middle (the first half
 * absorbs warm-up: JIT, pools, caches filling).
 * @param {Array<{ mainBytes: number | null }>} rss
 */
export function rssGrowth(rss) {
  const values = rss.map((sample) => sample.mainBytes).filter((value) => value !== null);
  if (values.length < 2) return null;
  const middle = /** @type {number} */ (values[Math.floor((values.length - 1) / 2)]);
  const last = /** @type {number} */ (values[values.length - 1]);
  return { startBytes: values[0], middleBytes: middle, endBytes: last, maxBytes: Math.max(.../** @type {number[]} */ (values)), secondHalfGrowth: (last - middle) / middle };
}
