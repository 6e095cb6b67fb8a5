#!/usr/bin/env node
// `npm run bench`: one run, one machine, one report (reports/bench.md and
// reports/bench.svg, the numbers in reports/bench.json). Sections, in order:
//   floor    a trivial grpc-js echo server under h2load (the gRPC floor);
//   broker   the broker (embedded fleet): unary (h2load), batch and
//            SignStream (grpc-js processes) per operation;
//   latency  p50/p99/p99.9 at 50% and 90% of unary peak, open loop;
//   soak     RSS of the broker before and after a soak at peak;
//   ceiling  pkcs11js straight on the broker's tokens, 1 and N processes;
//   scaling  brokers with 1, 2, 3 and 6 appliances;
//   failover the local zone crashed under load (its own tables and JSON).
// Then the issue's targets, met or missed, with what saturated first.
//
// Everything it starts is stopped on exit or Ctrl-C, every loop is bounded in
// time, and the data directories (they hold PINs) are removed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignRequest } from '@hsm-broker/proto';
import { renderChart } from './bench-chart.mjs';
import { renderMarkdown } from './bench-markdown.mjs';
import { benchOperations, batchItems, operationById } from './bench-operations.mjs';
import { UsageError, parseOptions, usage } from './bench-options.mjs';
import { writeJson } from './bench-report.mjs';
import { evaluateTargets } from './bench-targets.mjs';
import { cleanEnvironment } from './broker-process.mjs';
import { measureFloor, measureGrpcJs, measureUnary } from './broker-runs.mjs';
import { measureCeiling } from './ceiling-runs.mjs';
import { startEchoServer } from './echo-server.mjs';
import { failoverRun } from './failover-section.mjs';
import { startBenchBroker } from './fleet-start.mjs';
import { measureLatencyAt, rssGrowth, soakAtPeak } from './latency-soak.mjs';
import { startCpuWindow } from './process-cpu.mjs';
import { installShutdown, started } from './run-state.mjs';

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));
/** A call slower than this is an error, not a latency: it keeps every run bounded. */
const callTimeoutMs = 5000;
/** Operations whose latency is measured at fractions of peak. */
const latencyOperations = ['sign-ecdsa', 'encrypt'];
const latencyFractions = [0.5, 0.9];

const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/** Runs that failed, with why: the report lists them, and the other runs go on. */
const runErrors = [];

/**
 * Runs one measurement; a failure is recorded and reported instead of
 * ending the whole run (a 15-minute run should not be lost to one glitch).
 * @template T
 * @param {string} label
 * @param {() => Promise<T>} measure
 * @returns {Promise<T | undefined>}
 */
async function attempt(label, measure) {
  try {
    return await measure();
  } catch (error) {
    if (started.interrupted) throw error;
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 500);
    progress(`${label} failed: ${message}`);
    runErrors.push({ run: label, message });
    return undefined;
  }
}

/** The command as the user can repeat it. */
function commandLine(argv) {
  const args = argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
  const direct = `node tools/bench/bench.mjs${args ? ` ${args}` : ''}`;
  return process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args ? ` -- ${args}` : ''}` : direct;
}

function machineInfo() {
  let h2load = 'h2load not found';
  try {
    h2load = execFileSync('h2load', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // Reported as missing; the unary runs then fail with how to install it.
  }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    h2load,
    loadAverageAtStart: os.loadavg().map((load) => Number(load.toFixed(2))),
  };
}

/** Busy share of the machine over one second before anything starts (100 % = one core). */
async function busyBeforeStart() {
  const window = startCpuWindow({});
  await new Promise((resolveAfter) => setTimeout(resolveAfter, 1000));
  return window.close().machine;
}

/** Seconds the chosen sections should take, start-ups included (roughly). */
function estimateSeconds(options) {
  const run = options.warmupS + options.durationS + 1;
  const ops = options.operations.map(operationById);
  const has = (section) => options.sections.includes(section);
  let seconds = 0;
  if (has('floor')) seconds += run + 2;
  if (has('broker') || has('latency') || has('soak') || has('ceiling')) seconds += 15;
  if (has('broker')) seconds += ops.reduce((sum, op) => sum + run * (1 + (op.batchMethod ? 1 : 0) + (op.stream ? 1 : 0)), 0);
  if (has('latency')) seconds += run * latencyFractions.length * ops.filter((op) => latencyOperations.includes(op.id)).length;
  if (has('soak')) seconds += options.soakS + 2;
  if (has('ceiling')) seconds += 2 * (run + 2) * ops.filter((op) => op.direct).length;
  if (has('scaling')) seconds += options.scaling.reduce((sum, appliances) => sum + 10 + 2 * appliances + 2 * run, 0);
  if (has('failover')) seconds += (options.failover.warmupMs + options.failover.beforeMs + options.failover.duringMs + options.failover.afterMs) / 1000 + 15;
  return Math.ceil(seconds);
}

/** The floor: the echo server under the unary load generator, with a Sign-sized request. */
async function floorSection(settings) {
  const echo = await startEchoServer(cleanEnvironment());
  try {
    const message = SignRequest.encode(SignRequest.fromPartial({ keyId: 'bench-ecdsa-p256', message: Buffer.alloc(32, 7), messageType: 1, signingAlgorithm: 1 })).finish();
    progress(`floor: echo server on ${echo.address}, ${settings.durationS} s of h2load`);
    return await measureFloor(echo, message, settings);
  } finally {
    await echo.stop();
  }
}

/** Unary, batch and stream per operation on the main broker. */
async function brokerSection(main, operations, settings) {
  const section = { fleet: main.fleet, workers: main.workers, startupS: Number((main.broker.startupMs / 1000).toFixed(2)), unary: {}, batch: {}, stream: {} };
  for (const operation of operations) {
    progress(`broker ${operation.id}: unary (h2load)`);
    section.unary[operation.id] = await attempt(`broker ${operation.id} unary`, () => measureUnary(main.broker, operation, main.samples, settings));
    if (operation.batchMethod) {
      progress(`broker ${operation.id}: batch of ${batchItems}`);
      section.batch[operation.id] = await attempt(`broker ${operation.id} batch`, () => measureGrpcJs(main.broker, operation, main.samples, 'batch', settings));
    }
    if (operation.stream) {
      progress(`broker ${operation.id}: SignStream`);
      section.stream[operation.id] = await attempt(`broker ${operation.id} stream`, () => measureGrpcJs(main.broker, operation, main.samples, 'stream', settings));
    }
  }
  return section;
}

/** Open-loop latency at fractions of the unary peak (measured here when the broker section did not run). */
async function latencySection(main, operations, brokerSectionResults, settings) {
  const entries = [];
  for (const operation of operations.filter((candidate) => latencyOperations.includes(candidate.id))) {
    const peak = brokerSectionResults?.unary?.[operation.id]?.opsPerSec ?? (await attempt(`latency ${operation.id} peak`, () => measureUnary(main.broker, operation, main.samples, settings)))?.opsPerSec;
    if (!peak) continue;
    const at = [];
    for (const fraction of latencyFractions) {
      progress(`latency ${operation.id}: ${Math.round(fraction * 100)}% of ${Math.round(peak)} calls/s, open loop`);
      const point = await attempt(`latency ${operation.id} ${fraction}`, () => measureLatencyAt(main.broker, operation, main.samples, peak, fraction, settings));
      if (point) at.push(point);
    }
    entries.push({ operation: operation.id, title: operation.title, peakOpsPerSec: peak, at });
  }
  return entries;
}

/** Direct pkcs11js on the (stopped) main broker's tokens, 1 process and as many as it had workers. */
async function ceilingSection(access, main, operations, settings, modulePath) {
  const byOperation = {};
  let library;
  const window = { warmupMs: settings.warmupS * 1000, durationMs: settings.durationS * 1000, modulePath };
  for (const operation of operations.filter((candidate) => candidate.direct)) {
    const key = main.samples.keys[operation.key];
    progress(`ceiling ${operation.id}: ${main.workers} processes`);
    const many = await attempt(`ceiling ${operation.id} ${main.workers} processes`, () => measureCeiling(access, operation, key, main.workers, window));
    progress(`ceiling ${operation.id}: 1 process`);
    const single = await attempt(`ceiling ${operation.id} 1 process`, () => measureCeiling(access, operation, key, 1, window));
    if (!many || !single) continue;
    byOperation[operation.id] = { single, many };
    library ??= many.library;
  }
  return { processes: main.workers, byOperation, library };
}

/** Unary and batch ECDSA Sign on brokers of each size. */
async function scalingSection(options, settings) {
  const operation = operationById('sign-ecdsa');
  const steps = [];
  for (const appliances of options.scaling) {
    progress(`scaling: ${appliances} appliance(s)`);
    const step = await attempt(`scaling ${appliances} appliances`, async () => {
      const bench = await startBenchBroker({ workspaceRoot, appliances, workersPerAppliance: options.workersPerAppliance, sessionsPerWorker: options.sessionsPerWorker, modulePath: options.modulePath, progress, rsa: false });
      try {
        const unary = await measureUnary(bench.broker, operation, bench.samples, settings);
        const batch = await measureGrpcJs(bench.broker, operation, bench.samples, 'batch', settings);
        return { appliances, fleet: bench.fleet, workers: bench.workers, unary, batch };
      } finally {
        await bench.stop();
        bench.discard();
      }
    });
    if (step) steps.push(step);
  }
  return steps;
}

async function main() {
  const argv = process.argv.slice(2);
  const options = parseOptions(argv, workspaceRoot);
  if (options.help) {
    console.log(usage());
    return;
  }
  installShutdown(progress);
  const startedAt = performance.now();
  const machine = { ...machineInfo(), busyBeforeStartPercent: await busyBeforeStart() };
  const command = commandLine(argv);
  const operations = benchOperations.filter((operation) => options.operations.includes(operation.id));
  const has = (section) => options.sections.includes(section);
  progress(`sections ${options.sections.join(', ')}; operations ${options.operations.join(', ')}; about ${estimateSeconds(options)} s`);
  const workDir = mkdtempSync(join(os.tmpdir(), 'hsmb-bench-load-'));
  started.dataDirs.add(workDir);
  const settings = { warmupS: options.warmupS, durationS: options.durationS, callTimeoutMs, workDir, h2load: options.h2load, batch: options.batch, stream: options.stream };

  /** @type {any} */
  const results = {
    generatedAt: new Date().toISOString(),
    command,
    machine,
    settings: { ...settings, workDir: undefined, workersPerAppliance: options.workersPerAppliance, sessionsPerWorker: options.sessionsPerWorker, applianceLatencyMs: options.applianceLatencyMs, appliances: options.appliances, batchItems, soakS: options.soakS, sections: options.sections },
  };
  if (has('floor')) results.floor = await attempt('floor', () => floorSection(settings));

  if (has('broker') || has('latency') || has('soak') || has('ceiling')) {
    progress(`starting the broker (${options.appliances} appliances, ${options.workersPerAppliance} workers each, ${options.sessionsPerWorker} sessions per worker)`);
    const rsa = operations.some((operation) => operation.key === 'rsa');
    const main = await startBenchBroker({ workspaceRoot, appliances: options.appliances, workersPerAppliance: options.workersPerAppliance, sessionsPerWorker: options.sessionsPerWorker, applianceLatencyMs: options.applianceLatencyMs, modulePath: options.modulePath, progress, rsa });
    try {
      if (has('broker')) results.broker = await brokerSection(main, operations, settings);
      else results.broker = { fleet: main.fleet, workers: main.workers, startupS: Number((main.broker.startupMs / 1000).toFixed(2)) };
      if (has('latency')) results.latency = await latencySection(main, operations, results.broker, settings);
      if (has('soak')) {
        const operation = operations.find((candidate) => candidate.id === 'sign-ecdsa') ?? operations[0];
        progress(`soak: ${operation.id} at peak for ${options.soakS} s`);
        const soak = await attempt('soak', () => soakAtPeak(main.broker, operation, main.samples, options.soakS, settings));
        if (soak) results.soak = { ...soak, growth: rssGrowth(soak.rss) };
      }
      results.brokerLog = main.broker.logSummary();
    } finally {
      progress('stopping the broker (the ceiling needs its tokens to itself)');
      const access = await main.stop();
      try {
        if (has('ceiling')) {
          results.ceiling = await ceilingSection(access, main, operations, settings, options.modulePath);
          machine.pkcs11Library = results.ceiling.library;
        }
      } finally {
        main.discard();
      }
    }
  }
  if (has('scaling')) results.scaling = await scalingSection(options, settings);
  if (has('failover')) {
    const failoverMachine = { ...machine, busyBeforeStartPercent: await busyBeforeStart() };
    await attempt('failover', () => failoverRun({ workspaceRoot, modulePath: options.modulePath, failover: options.failover }, failoverMachine, command, progress));
  }
  rmSync(workDir, { recursive: true, force: true });
  started.dataDirs.delete(workDir);

  machine.loadAverageAtEnd = os.loadavg().map((load) => Number(load.toFixed(2)));
  results.totalS = (performance.now() - startedAt) / 1000;
  results.runErrors = runErrors;
  results.targets = evaluateTargets(results);
  mkdirSync(options.outDir, { recursive: true });
  const markdownPath = join(options.outDir, 'bench.md');
  writeFileSync(markdownPath, renderMarkdown(results));
  writeFileSync(join(options.outDir, 'bench.svg'), renderChart(results));
  writeJson(join(options.outDir, 'bench.json'), results);
  const out = (line = '') => process.stdout.write(`${line}\n`);
  out();
  for (const outcome of results.targets) out(`${outcome.met === null ? 'n/a   ' : outcome.met ? 'met   ' : 'MISSED'} ${outcome.target}: ${outcome.measured}${outcome.saturated ? ` — saturated first: ${outcome.saturated}` : ''}`);
  out();
  for (const { run, message } of runErrors) out(`FAILED RUN ${run}: ${message}`);
  out(`report: ${relative(workspaceRoot, markdownPath)} (+ bench.svg, bench.json); total run time ${Math.round(results.totalS)} s`);
  if (runErrors.length) process.exitCode = 1;
}

main()
  .then(() => {
    // Whatever a failed run left behind (a measuring process, a broker that
    // never served) must not keep the bench alive: the exit handler kills it.
    process.exit(process.exitCode ?? 0);
  })
  .catch((error) => {
    // After Ctrl-C the runs fail because their processes were stopped: not news.
    if (started.interrupted) return;
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n${usage()}\n`);
      process.exit(2);
    }
    process.stderr.write(`bench: failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    // Stop the broker in order if it is still up; the exit handler kills the rest.
    const stopping = started.broker?.stop() ?? Promise.resolve();
    stopping.finally(() => process.exit(1));
  });
