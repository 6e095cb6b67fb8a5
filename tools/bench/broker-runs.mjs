// Throughput through the broker and through the echo server (the floor):
// unary calls from h2load, batch and stream calls from several grpc-js
// processes. Every run reports its rate, latency, failed calls and where the
// CPU went (broker main process, its workers, the generator, the rest).
import { cleanEnvironment } from './broker-process.mjs';
import { batchItems, echoPath, grpcFrame } from './bench-operations.mjs';
import { cpuDuringWindow } from './ceiling-runs.mjs';
import { runH2load } from './h2load-run.mjs';
import { summarize } from './latency-stats.mjs';
import { runMeasuringProcesses } from './measuring-processes.mjs';

/**
 * @typedef {object} LoadSettings
 * @property {number} warmupS
 * @property {number} durationS
 * @property {number} callTimeoutMs
 * @property {string} workDir
 * @property {{ clients: number, streams: number, threads: number }} h2load
 * @property {{ generators: number, inFlight: number }} batch   batch calls in flight per generator
 * @property {{ generators: number, inFlight: number }} stream  requests in flight on each generator's stream
 */

/**
 * One measured run, whatever made the load.
 * @typedef {object} RunResult
 * @property {number} opsPerSec   operations (batch items, stream messages) completed per second
 * @property {number | null} p50Ms  per call (a batch counts once)
 * @property {number | null} p99Ms
 * @property {number | null} [p999Ms]
 * @property {number} failed      calls or items that failed, over the whole run
 * @property {string[]} [failures] a few failure messages
 * @property {Record<string, number | null>} cpu percent of one core: brokerMain, brokerWorkers, generator, other, machine
 * @property {{ kind: string, processes: number, settings: string }} generator
 */

/**
 * Answered calls by status code from the broker's /metrics (hsmb_rpc_requests_total),
 * summed over methods; batch and stream items count as their unary method.
 * @param {string | undefined} adminAddress
 * @returns {Promise<Record<string, number>>}
 */
export async function answeredByCode(adminAddress) {
  if (!adminAddress) return {};
  const response = await fetch(`http://${adminAddress}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  /** @type {Record<string, number>} */
  const counts = {};
  for (const match of text.matchAll(/^hsmb_rpc_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const code = /code="([^"]+)"/.exec(match[1])?.[1] ?? 'unknown';
    counts[code] = (counts[code] ?? 0) + Number(match[2]);
  }
  return counts;
}

/** Calls answered with anything but OK between two readings of {@link answeredByCode}. */
export function failedBetween(before, after) {
  const failures = [];
  let failed = 0;
  for (const [code, total] of Object.entries(after)) {
    if (code === 'OK') continue;
    const delta = total - (before[code] ?? 0);
    if (delta > 0) {
      failed += delta;
      failures.push(`${delta} × ${code}`);
    }
  }
  return { failed, failures };
}

/** The broker's processes as CPU groups. */
const brokerGroups = (broker) => ({ brokerMain: () => [/** @type {number} */ (broker.child.pid)], brokerWorkers: () => broker.workerPids() });

/**
 * Unary calls from h2load at peak (closed loop), or at `ratePerSec` (open loop).
 * @param {import('./broker-process.mjs').StartedBroker} broker
 * @param {import('./bench-operations.mjs').BenchOperation} operation
 * @param {import('./bench-operations.mjs').BenchSamples} samples
 * @param {LoadSettings} settings
 * @param {{ ratePerSec?: number, durationS?: number, streams?: number }} [overrides]
 * @returns {Promise<RunResult>}
 */
export async function measureUnary(broker, operation, samples, settings, overrides = {}) {
  const before = await answeredByCode(broker.adminAddress);
  const run = await runH2load({
    address: broker.address,
    path: operation.path,
    body: grpcFrame(operation.unaryRequest(samples)),
    clients: settings.h2load.clients,
    streams: overrides.streams ?? settings.h2load.streams,
    threads: settings.h2load.threads,
    warmupS: settings.warmupS,
    durationS: overrides.durationS ?? settings.durationS,
    ratePerSec: overrides.ratePerSec,
    cpuGroups: brokerGroups(broker),
    workDir: settings.workDir,
  });
  const { failed, failures } = failedBetween(before, await answeredByCode(broker.adminAddress));
  return { ...run, failed: failed + run.failed, failures, generator: { kind: 'h2load', processes: 1, settings: run.settings } };
}

/**
 * The gRPC floor: the same h2load load on the echo server.
 * @param {{ address: string, pid: number }} echo
 * @param {Uint8Array} message the request echoed (an ECDSA Sign request: same size)
 * @param {LoadSettings} settings
 * @returns {Promise<RunResult>}
 */
export async function measureFloor(echo, message, settings) {
  const run = await runH2load({
    address: echo.address,
    path: echoPath,
    body: grpcFrame(message),
    clients: settings.h2load.clients,
    streams: settings.h2load.streams,
    threads: settings.h2load.threads,
    warmupS: settings.warmupS,
    durationS: settings.durationS,
    cpuGroups: { brokerMain: () => [echo.pid] },
    workDir: settings.workDir,
  });
  return { ...run, generator: { kind: 'h2load', processes: 1, settings: run.settings } };
}

/**
 * Batch calls (`batchItems` items each) or SignStream messages from several
 * grpc-js processes.
 * @param {import('./broker-process.mjs').StartedBroker} broker
 * @param {import('./bench-operations.mjs').BenchOperation} operation
 * @param {import('./bench-operations.mjs').BenchSamples} samples
 * @param {'batch' | 'stream'} mode
 * @param {LoadSettings} settings
 * @returns {Promise<RunResult>}
 */
export async function measureGrpcJs(broker, operation, samples, mode, settings) {
  const shape = settings[mode];
  const warmupMs = settings.warmupS * 1000;
  const durationMs = settings.durationS * 1000;
  /** @type {Promise<Record<string, number | null>>} */
  let cpu = Promise.resolve({});
  const before = await answeredByCode(broker.adminAddress);
  const { reports } = await runMeasuringProcesses({
    script: new URL('./grpc-load-worker.mjs', import.meta.url),
    processes: Array.from({ length: shape.generators }, () => ({
      init: { address: broker.address, mode, operation: operation.id, samples, items: batchItems, concurrency: shape.inFlight, warmupMs, durationMs, callTimeoutMs: settings.callTimeoutMs },
    })),
    baseEnv: cleanEnvironment(),
    readyTimeoutMs: 15_000,
    runTimeoutMs: warmupMs + durationMs + settings.callTimeoutMs + 10_000,
    onGo: (pids) => (cpu = cpuDuringWindow({ ...brokerGroups(broker), generator: () => pids }, { warmupMs, durationMs })),
  });
  const summary = summarize(reports, durationMs);
  const counted = failedBetween(before, await answeredByCode(broker.adminAddress));
  return {
    opsPerSec: summary.opsPerSec,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    // Item failures are in the broker's counters; whole-call failures only in the generators'.
    failed: Math.max(counted.failed, summary.errorCount),
    failures: [...counted.failures, ...summary.errorSamples],
    cpu: await cpu,
    generator: {
      kind: 'grpc-js',
      processes: shape.generators,
      settings: mode === 'batch' ? `${shape.generators} processes × ${shape.inFlight} batches of ${batchItems} in flight` : `${shape.generators} processes × 1 SignStream × ${shape.inFlight} requests in flight`,
    },
  };
}
