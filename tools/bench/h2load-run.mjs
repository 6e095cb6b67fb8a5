// Unary load from h2load (Debian nghttp2-client): a C HTTP/2 client that
// posts one fixed gRPC frame, far cheaper per call than a grpc-js client, so
// the generator is not what limits a unary run. Closed loop (clients ×
// streams in flight) for peak throughput; open loop (--rps, a fixed rate per
// client) for latency at a given load. h2load counts HTTP status only, and a
// gRPC error is HTTP 200 with a grpc-status trailer, so callers check the
// server's own counters (broker metrics) for failed calls.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from './latency-stats.mjs';
import { own } from './owned-processes.mjs';
import { startCpuWindow, withOther } from './process-cpu.mjs';

/**
 * @typedef {object} H2loadLoad
 * @property {string} address     host:port
 * @property {string} path        gRPC method path
 * @property {Uint8Array} body    one gRPC frame
 * @property {number} clients     HTTP/2 connections (-c)
 * @property {number} streams     streams in flight per connection (-m)
 * @property {number} threads     h2load threads (-t), each one core at most
 * @property {number} warmupS
 * @property {number} durationS
 * @property {number} [ratePerSec] open loop: calls per second in total, spread over the clients
 * @property {Record<string, () => number[]>} [cpuGroups] further processes to measure in the window
 * @property {string} workDir     where the body and the per-request log are written
 */

/**
 * What one h2load run measured. Latencies are from the per-request log
 * (status 200 only), so they are exact percentiles, not h2load's mean/sd.
 * @typedef {object} H2loadResult
 * @property {number} opsPerSec
 * @property {number} succeeded
 * @property {number} failed      HTTP-level failures, errors and timeouts
 * @property {number | null} p50Ms
 * @property {number | null} p99Ms
 * @property {number | null} p999Ms
 * @property {Record<string, number | null>} cpu percent of one core per group: generator, the cpuGroups, other, machine
 * @property {string} settings    the h2load flags, for the report
 */

/**
 * Parses h2load's summary: `requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout`.
 * @param {string} output
 */
export function parseH2loadSummary(output) {
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
  if (!requests) throw new Error(`h2load printed no request summary:\n${output.slice(-2000)}`);
  const [, total, , , succeeded, failed, errored, timeout] = requests.map(Number);
  return { total, succeeded, failed: failed + errored + timeout };
}

/**
 * Latency percentiles from h2load's --log-file (start µs, status, duration µs per line).
 * @param {string} text
 */
export function logPercentiles(text) {
  const durations = [];
  for (const line of text.split('\n')) {
    const [, statusCode, micros] = line.split('\t');
    if (statusCode === '200') durations.push(Number(micros) / 1000);
  }
  const sorted = Float64Array.from(durations).sort();
  return { count: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), p999Ms: percentile(sorted, 99.9) };
}

/**
 * Runs h2load once and measures CPU of it and `cpuGroups` over its main window.
 * @param {H2loadLoad} load
 * @returns {Promise<H2loadResult>}
 */
export async function runH2load(load) {
  const bodyFile = join(load.workDir, 'h2load-body');
  const logFile = join(load.workDir, 'h2load-requests.log');
  writeFileSync(bodyFile, load.body);
  const flags = [
    '-c', String(load.clients),
    '-m', String(load.streams),
    '-t', String(load.threads),
    '-D', String(load.durationS),
    ...(load.warmupS > 0 ? ['--warm-up-time', String(load.warmupS)] : []),
    ...(load.ratePerSec ? ['--rps', String(Math.max(1, Math.round(load.ratePerSec / load.clients)))] : []),
  ];
  const args = [...flags, '-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--log-file', logFile, `http://${load.address}${load.path}`];
  const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  own(child);
  const pid = /** @type {number} */ (child.pid);
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`h2load did not start (install Debian nghttp2-client): ${error.message}`)));
    child.once('exit', (code) => resolve(code));
  });
  const groups = { generator: () => [pid], ...load.cpuGroups };
  // The main window opens after the warm-up and after h2load has connected
  // (it starts its clock once connected; a moment's slack either side).
  const cpu = new Promise((resolve) => {
    setTimeout(() => {
      const window = startCpuWindow(groups);
      setTimeout(() => resolve(withOther(window.close())), Math.max(200, load.durationS * 1000 - 300));
    }, load.warmupS * 1000 + 200);
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), (load.warmupS + load.durationS + 30) * 1000);
  const code = await exited;
  clearTimeout(timeout);
  if (code !== 0) throw new Error(`h2load exited ${code}: ${args.join(' ')}\n${output.slice(-2000)}`);
  const summary = parseH2loadSummary(output);
  const latency = logPercentiles(readFileSync(logFile, 'utf8'));
  rmSync(logFile, { force: true });
  return {
    opsPerSec: summary.succeeded / load.durationS,
    succeeded: summary.succeeded,
    failed: summary.failed,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    p999Ms: latency.p999Ms,
    cpu: await cpu,
    settings: `h2load ${flags.join(' ')}`,
  };
}
