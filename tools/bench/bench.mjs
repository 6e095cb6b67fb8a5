#!/usr/bin/env node
// `npm run bench`: how many operations per second the broker serves, what
// that costs against calling the same SoftHSM tokens directly, and what a
// caller sees when the broker's local zone dies.
//
// Throughput runs (`--throughput` alone):
//   1. start the built broker (fresh data dir, embedded 3-appliance fleet);
//   2. create a P-256 signing key and an AES-256 key through its API;
//   3. load it from several grpc-js client processes: Sign, then Encrypt;
//   4. stop it, then run pkcs11js loops on the same tokens and keys with as
//      many processes as the broker had workers, and with one process;
//   5. print a table and write reports/bench.json.
// Failover run (`--failover` alone; see failover-run.mjs):
//   6. start another broker with a 3x2 fleet and fault injection, steady Sign
//      load, crash the local zone, clear the faults; print a table and write
//      reports/bench-failover.json.
// Without either flag both run, throughput first.
//
// Everything it starts is stopped on exit or Ctrl-C, every loop is bounded in
// time, and the data directories (they hold PINs) are removed.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkBenchCalls, createBenchKeys } from './bench-keys.mjs';
import { cpuTable, directLatencyTable, errorLines, resultsTable, writeJson } from './bench-report.mjs';
import { applianceAccess, cleanEnvironment, startBroker } from './broker-process.mjs';
import {
  brokerEventLines,
  failoverErrorLines,
  failoverPhaseTable,
  failoverTargetTable,
  latencyTimelineLines,
  methodLines,
  recoveryLines,
  routingLine,
  stateChangeLines,
} from './failover-report.mjs';
import { runFailover } from './failover-run.mjs';
import { summarize } from './latency-stats.mjs';
import { runMeasuringProcesses } from './measuring-processes.mjs';
import { signalAll } from './owned-processes.mjs';
import { startCpuWindow, withOther } from './process-cpu.mjs';

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));
const localFleet = '3x1';
/** The failover run's fleet: three zones of two appliances, one session each. */
const failoverFleet = '3x2';
const failoverWorkersPerAppliance = 1;
/** A call slower than this is an error, not a latency: it keeps every run bounded. */
const callTimeoutMs = 5000;
const messageBytes = 32;
const plaintextBytes = 1024;

/** The scenarios, in the order they run. */
const operations = [
  { operation: 'sign', title: 'Sign ECDSA P-256 (32 B RAW)' },
  { operation: 'encrypt', title: 'Encrypt AES-256-GCM (1 KiB)' },
];

const optionSpecs = {
  duration: { type: 'string', default: '10', min: 1, max: 120, help: 'measured seconds per scenario' },
  warmup: { type: 'string', default: '1', min: 0, max: 30, help: 'unmeasured seconds before each window' },
  clients: { type: 'string', default: '4', min: 1, max: 16, help: 'load generator processes (one gRPC channel each)' },
  concurrency: { type: 'string', default: '8', min: 1, max: 256, help: 'calls in flight per load generator' },
  workers: { type: 'string', default: '2', min: 1, max: 8, help: 'broker worker processes per appliance (HSMB_WORKERS_PER_APPLIANCE)' },
  module: { type: 'string', default: '/usr/lib/softhsm/libsofthsm2.so', help: 'SoftHSM PKCS#11 module' },
  json: { type: 'string', default: 'reports/bench.json', help: 'where to write the throughput results (relative to the workspace)' },
  throughput: { type: 'boolean', default: false, help: 'run only the throughput runs (broker against direct)' },
  failover: { type: 'boolean', default: false, help: 'run only the failover run (local zone crashes under load)' },
  rate: { type: 'string', default: '300', min: 10, max: 5000, help: 'failover: Sign calls per second, all generators together' },
  generators: { type: 'string', default: '2', min: 1, max: 16, help: 'failover: load generator processes' },
  deadline: { type: 'string', default: '2000', min: 100, max: 30000, help: 'failover: deadline of each call, ms' },
  before: { type: 'string', default: '5', min: 1, max: 120, help: 'failover: seconds of steady load before the crash' },
  during: { type: 'string', default: '5', min: 1, max: 120, help: 'failover: seconds the local zone stays crashed' },
  after: { type: 'string', default: '8', min: 1, max: 120, help: 'failover: seconds after ClearFaults (probes, slow start)' },
  poll: { type: 'string', default: '50', min: 10, max: 1000, help: 'failover: GetFleetStatus poll interval, ms' },
  'failover-json': { type: 'string', default: 'reports/bench-failover.json', help: 'where to write the failover results' },
  help: { type: 'boolean', default: false, help: 'print this help' },
};

function usage() {
  const lines = ['usage: npm run bench -- [options]', '', 'Without --throughput or --failover, both run (throughput first).', ''];
  const width = Math.max(...Object.keys(optionSpecs).map((name) => name.length));
  for (const [name, spec] of Object.entries(optionSpecs)) {
    const range = spec.min === undefined ? '' : ` (${spec.min}-${spec.max})`;
    lines.push(`  --${name.padEnd(width)} ${spec.help}${range}${spec.type === 'boolean' ? '' : `, default ${spec.default}`}`);
  }
  return lines.join('\n');
}

/** Reads and checks the flags once; a bad value names the flag, the value and the range. */
function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: Object.fromEntries(Object.entries(optionSpecs).map(([name, { type, default: d }]) => [name, { type, default: d }])), strict: true }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return { help: true };
  const integer = (name) => {
    const { min, max } = optionSpecs[name];
    const raw = values[name];
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: ${JSON.stringify(raw)} is not valid; expected an integer from ${min} to ${max}`);
    return n;
  };
  const runAll = !values.throughput && !values.failover;
  return {
    help: false,
    runThroughput: runAll || values.throughput,
    runFailover: runAll || values.failover,
    failover: {
      ratePerSec: integer('rate'),
      generators: integer('generators'),
      callTimeoutMs: integer('deadline'),
      warmupMs: integer('warmup') * 1000,
      beforeMs: integer('before') * 1000,
      duringMs: integer('during') * 1000,
      afterMs: integer('after') * 1000,
      pollMs: integer('poll'),
      workersPerAppliance: failoverWorkersPerAppliance,
      messageBytes,
      jsonPath: resolve(workspaceRoot, values['failover-json']),
    },
    durationMs: integer('duration') * 1000,
    warmupMs: integer('warmup') * 1000,
    clients: integer('clients'),
    concurrency: integer('concurrency'),
    workersPerAppliance: integer('workers'),
    modulePath: values.module,
    jsonPath: resolve(workspaceRoot, values.json),
  };
}

class UsageError extends Error {}

/** The command as the user can repeat it. */
function commandLine(argv) {
  const args = argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
  const direct = `node tools/bench/bench.mjs${args ? ` ${args}` : ''}`;
  return process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args ? ` -- ${args}` : ''}  (= ${direct})` : direct;
}

function machineInfo() {
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((load) => Number(load.toFixed(2))),
  };
}

const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/**
 * Measures CPU per process group over the measured window of a run that
 * starts now: opens after the warm-up, closes at the end of the window.
 */
function cpuDuringWindow(groups, { warmupMs, durationMs }) {
  return new Promise((resolvePercent) => {
    setTimeout(() => {
      const window = startCpuWindow(groups);
      setTimeout(() => resolvePercent(withOther(window.close())), durationMs);
    }, warmupMs);
  });
}

/** Busy share of the machine over one second before anything starts (100 % = one core). */
async function busyBeforeStart() {
  const window = startCpuWindow({});
  await new Promise((resolveAfter) => setTimeout(resolveAfter, 1000));
  return window.close().machine;
}

/** Load generators against the broker for one operation. */
async function measureBroker(broker, scenario, key, options) {
  let cpu = Promise.resolve({});
  const { reports } = await runMeasuringProcesses({
    script: new URL('./grpc-load-worker.mjs', import.meta.url),
    processes: Array.from({ length: options.clients }, () => ({
      init: {
        address: broker.address,
        operation: scenario.operation,
        keyId: key.keyId,
        concurrency: options.concurrency,
        warmupMs: options.warmupMs,
        durationMs: options.durationMs,
        callTimeoutMs,
        messageBytes,
        plaintextBytes,
      },
    })),
    baseEnv: cleanEnvironment(),
    readyTimeoutMs: 15_000,
    runTimeoutMs: options.warmupMs + options.durationMs + callTimeoutMs + 10_000,
    onGo: (pids) =>
      (cpu = cpuDuringWindow(
        { brokerMain: () => [/** @type {number} */ (broker.child.pid)], brokerWorkers: () => broker.workerPids(), loadGenerators: () => pids },
        options,
      )),
  });
  return { ...summarize(reports, options.durationMs), cpu: await cpu };
}

/**
 * pkcs11js loops on the broker's tokens: `processes` processes spread over
 * the appliances the way the broker spreads its workers.
 */
async function measureDirect(access, scenario, key, processes, options) {
  let cpu = Promise.resolve({});
  const { infos, reports } = await runMeasuringProcesses({
    script: new URL('./direct-pkcs11-worker.mjs', import.meta.url),
    processes: Array.from({ length: processes }, (_, index) => {
      const appliance = access[index % access.length];
      return {
        env: { SOFTHSM2_CONF: appliance.softhsmConf },
        init: {
          operation: scenario.operation,
          modulePath: options.modulePath,
          tokenLabel: appliance.applianceId,
          userPin: appliance.userPin,
          label: `hsmb:${key.keyId}:${key.version}`,
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          messageBytes,
          plaintextBytes,
          // The broker's GCM additional data is its ciphertext header: magic, version, id length, id, key version.
          aadBytes: 4 + Buffer.byteLength(key.keyId) + 4,
        },
      };
    }),
    baseEnv: cleanEnvironment(),
    readyTimeoutMs: 15_000,
    runTimeoutMs: options.warmupMs + options.durationMs + 15_000,
    onGo: (pids) => (cpu = cpuDuringWindow({ measuring: () => pids }, options)),
  });
  return { summary: { ...summarize(reports, options.durationMs), cpu: await cpu }, library: /** @type {any} */ (infos[0])?.library };
}

/** State the shutdown path needs. */
const started = { /** @type {Set<string>} */ dataDirs: new Set(), /** @type {any} */ broker: undefined, interrupted: false };

function makeDataDir() {
  const dir = mkdtempSync(join(os.tmpdir(), 'hsmb-bench-'));
  started.dataDirs.add(dir);
  return dir;
}

function removeDataDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  started.dataDirs.delete(dir);
}

function installShutdown() {
  // Last resort, synchronous: whatever still runs is killed and the PINs removed.
  process.on('exit', () => {
    signalAll('SIGKILL');
    for (const dir of [...started.dataDirs]) removeDataDir(dir);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (started.interrupted) return;
      started.interrupted = true;
      progress(`${signal}: stopping everything the bench started`);
      signalAll('SIGTERM');
      const brokerStopped = started.broker ? started.broker.stop() : Promise.resolve();
      brokerStopped.finally(() => process.exit(130));
    });
  }
}

async function main() {
  const argv = process.argv.slice(2);
  const options = parseOptions(argv);
  if (options.help) {
    console.log(usage());
    return;
  }
  installShutdown();
  const machine = { ...machineInfo(), busyBeforeStartPercent: await busyBeforeStart() };
  const command = commandLine(argv);
  const perScenarioS = perScenarioSeconds(options);
  const failoverS = (options.failover.warmupMs + options.failover.beforeMs + options.failover.duringMs + options.failover.afterMs) / 1000;
  const estimateS = (options.runThroughput ? operations.length * 3 * perScenarioS + 15 : 0) + (options.runFailover ? failoverS + 12 : 0);
  const parts = [
    ...(options.runThroughput ? [`throughput: ${operations.length} operations × 3 runs × ${perScenarioS} s`] : []),
    ...(options.runFailover ? [`failover: ${failoverS} s of load`] : []),
  ];
  progress(`${parts.join('; ')}; with start-up about ${Math.ceil(estimateS)} s`);
  if (options.runThroughput) await throughputRuns(options, machine, command);
  // After the throughput runs the machine's state at start says little: look again.
  if (options.runFailover) await failoverRun(options, options.runThroughput ? { ...machine, busyBeforeStartPercent: await busyBeforeStart() } : machine, command);
}

/** Seconds of one throughput scenario, warm-up included. */
const perScenarioSeconds = (options) => (options.warmupMs + options.durationMs) / 1000;

/** The throughput runs: broker, then direct PKCS#11 on the same tokens. */
async function throughputRuns(options, machine, command) {
  const dataDir = makeDataDir();
  progress(`starting the broker (${localFleet} local fleet, ${options.workersPerAppliance} workers per appliance, data in ${dataDir})`);
  const broker = await startBroker({
    workspaceRoot,
    dataDir,
    localFleet,
    modulePath: options.modulePath,
    workersPerAppliance: options.workersPerAppliance,
    startTimeoutMs: 90_000,
  });
  started.broker = broker;
  progress(`broker serving on ${broker.address} after ${(broker.startupMs / 1000).toFixed(1)} s: ${broker.appliances.join(', ')}`);
  const keys = await createBenchKeys(broker.address, broker.appliances);
  const check = await checkBenchCalls(broker.address, keys);
  progress(`keys ${keys.sign.keyId} and ${keys.encrypt.keyId} on ${keys.sign.replicas.length} appliances; Sign verified, Encrypt/Decrypt round trip ok`);

  const brokerResults = {};
  for (const scenario of operations) {
    progress(`broker ${scenario.operation}: ${options.clients} load generators × ${options.concurrency} in flight for ${perScenarioSeconds(options)} s`);
    brokerResults[scenario.operation] = await measureBroker(broker, scenario, keys[scenario.operation], options);
  }
  const brokerLog = broker.logSummary();
  progress('stopping the broker so the baseline has the tokens to itself');
  await broker.stop();
  started.broker = undefined;

  const access = broker.appliances.map((id) => applianceAccess(dataDir, id));
  const sameCount = broker.appliances.length * options.workersPerAppliance;
  const directResults = {};
  let library;
  for (const scenario of operations) {
    progress(`direct ${scenario.operation}: ${sameCount} processes for ${perScenarioSeconds(options)} s`);
    const direct = await measureDirect(access, scenario, keys[scenario.operation], sameCount, options);
    progress(`direct ${scenario.operation}: 1 process for ${perScenarioSeconds(options)} s`);
    const single = await measureDirect(access, scenario, keys[scenario.operation], 1, options);
    directResults[scenario.operation] = { direct: direct.summary, directSingle: single.summary };
    library ??= direct.library;
  }
  removeDataDir(dataDir);

  const results = {
    generatedAt: new Date().toISOString(),
    command,
    machine: { ...machine, pkcs11Library: library ?? 'unknown' },
    settings: {
      durationS: options.durationMs / 1000,
      warmupS: options.warmupMs / 1000,
      loadGenerators: options.clients,
      inFlightPerGenerator: options.concurrency,
      callTimeoutMs,
      localFleet,
      appliances: broker.appliances,
      workersPerAppliance: options.workersPerAppliance,
      brokerWorkers: sameCount,
      messageBytes,
      plaintextBytes,
    },
    broker: { startupS: Number((broker.startupMs / 1000).toFixed(2)), logWarnings: brokerLog.warnings, logErrors: brokerLog.errors, checkedCall: check },
    scenarios: operations.map((scenario) => {
      const viaBroker = brokerResults[scenario.operation];
      const { direct, directSingle } = directResults[scenario.operation];
      return {
        operation: scenario.operation,
        title: scenario.title,
        broker: viaBroker,
        direct,
        directSingle,
        ratioBrokerToDirect: direct.opsPerSec > 0 ? viaBroker.opsPerSec / direct.opsPerSec : null,
      };
    }),
  };
  writeJson(options.jsonPath, results);
  printResults(results, brokerLog, options);
}

function printResults(results, brokerLog, options) {
  const { machine, settings } = results;
  const out = (line = '') => process.stdout.write(`${line}\n`);
  out();
  out(`hsm-broker bench — ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}`);
  out(`PKCS#11: ${machine.pkcs11Library}; fleet ${settings.localFleet} (${settings.appliances.join(', ')}), ${settings.workersPerAppliance} workers per appliance = ${settings.brokerWorkers} worker processes`);
  out(`command: ${results.command}`);
  if (machine.busyBeforeStartPercent !== null && machine.busyBeforeStartPercent > 20) {
    out(`WARNING: the machine was ${Math.round(machine.busyBeforeStartPercent)}% busy (of one core) before the bench started; other work competes with it (see "other" below)`);
  }
  out(`window: ${settings.durationS} s measured after ${settings.warmupS} s warm-up per run; load: ${settings.loadGenerators} grpc-js processes × ${settings.inFlightPerGenerator} calls in flight, insecure loopback`);
  out();
  out(resultsTable(results));
  out();
  out(directLatencyTable(results));
  out();
  out('CPU in the measured window (% of one core):');
  out(cpuTable(results));
  out();
  out(`note: the load generators share the machine's ${machine.nproc} cores with the broker and its workers, so the`);
  out('      broker figures are what is left after the clients take their CPU (see the table above); a remote');
  out('      client fleet would leave the broker more. The direct runs have no client, no gRPC and no IPC.');
  const errors = errorLines(results);
  if (errors.length) {
    out();
    out('errors:');
    for (const line of errors) out(`  ${line}`);
  }
  if (brokerLog.warnings || brokerLog.errors) {
    out();
    out(`broker log: ${brokerLog.warnings} warnings, ${brokerLog.errors} errors; last lines:`);
    for (const line of brokerLog.tail.slice(-5)) out(`  ${line}`);
  }
  out();
  out(`JSON: ${relative(workspaceRoot, options.jsonPath) || options.jsonPath}`);
}

/** The failover run: its own broker (3x2 fleet, fault injection), the local zone crashed under steady load. */
async function failoverRun(options, machine, command) {
  const settings = options.failover;
  const dataDir = makeDataDir();
  progress(`failover: starting a broker (${failoverFleet} local fleet, ${settings.workersPerAppliance} worker per appliance, fault injection on, data in ${dataDir})`);
  const broker = await startBroker({
    workspaceRoot,
    dataDir,
    localFleet: failoverFleet,
    modulePath: options.modulePath,
    workersPerAppliance: settings.workersPerAppliance,
    startTimeoutMs: 90_000,
    env: { HSMB_FAULT_INJECTION: '1' },
  });
  started.broker = broker;
  progress(`failover: broker serving on ${broker.address} after ${(broker.startupMs / 1000).toFixed(1)} s: ${broker.appliances.join(', ')}`);
  const keys = await createBenchKeys(broker.address, broker.appliances, ['sign']);
  await checkBenchCalls(broker.address, keys);
  progress(`failover: key ${keys.sign.keyId} on ${keys.sign.replicas.length} appliances, Sign verified; before: ${settings.ratePerSec} calls/s for ${(settings.warmupMs + settings.beforeMs) / 1000} s (warm-up included)`);
  const failover = await runFailover(broker, keys.sign, settings, (line) => progress(`failover ${line}`));
  const brokerLog = broker.logSummary();
  progress('failover: stopping the broker');
  await broker.stop();
  started.broker = undefined;
  removeDataDir(dataDir);

  const results = {
    generatedAt: new Date().toISOString(),
    command,
    machine,
    settings: {
      localFleet: failoverFleet,
      appliances: broker.appliances,
      workersPerAppliance: settings.workersPerAppliance,
      operation: 'Sign ECDSA_SHA_256, P-256 key, 32-byte RAW message',
      ratePerSec: settings.ratePerSec,
      generators: settings.generators,
      callTimeoutMs: settings.callTimeoutMs,
      warmupS: settings.warmupMs / 1000,
      beforeS: settings.beforeMs / 1000,
      duringS: settings.duringMs / 1000,
      afterS: settings.afterMs / 1000,
      pollMs: settings.pollMs,
      fault: { kind: 'CRASH', probability: 0, durationMs: 0, appliances: failover.deadAppliances },
      broker: broker.settings,
    },
    broker: { startupS: Number((broker.startupMs / 1000).toFixed(2)), logWarnings: brokerLog.warnings, logErrors: brokerLog.errors },
    ...failover,
  };
  writeJson(settings.jsonPath, results);
  printFailover(results, brokerLog, settings);
}

function printFailover(results, brokerLog, settings) {
  const { machine } = results;
  const out = (line = '') => process.stdout.write(`${line}\n`);
  const zones = [...new Set(results.finalStatus.map((appliance) => appliance.zone))];
  const fleet = zones
    .map((zone) => `${zone}${zone === results.deadZone ? ' (local)' : ''}: ${results.finalStatus.filter((appliance) => appliance.zone === zone).map((appliance) => appliance.id).join(', ')}`)
    .join(' | ');
  out();
  out(`hsm-broker failover bench — ${machine.nproc} cores (${machine.cpuModel}), Node ${machine.node}, ${machine.platform}`);
  out(`fleet ${results.settings.localFleet}: ${fleet}; ${results.settings.workersPerAppliance} worker per appliance`);
  out(routingLine(results.settings.broker));
  out(`command: ${results.command}`);
  if (machine.busyBeforeStartPercent !== null && machine.busyBeforeStartPercent > 20) {
    out(`WARNING: the machine was ${Math.round(machine.busyBeforeStartPercent)}% busy (of one core) before the bench started; other work competes with it (see "other CPU" below)`);
  }
  out(
    `load: Sign ECDSA P-256 at ${settings.ratePerSec} calls/s (open loop, ${settings.generators} grpc-js processes), ${settings.callTimeoutMs} ms deadline per call; ` +
      `phases: ${settings.warmupMs / 1000} s warm-up, ${settings.beforeMs / 1000} s before, ${settings.duringMs / 1000} s during ` +
      `(InjectFault CRASH, probability 0, on ${results.deadAppliances.join(' and ')}), ${settings.afterMs / 1000} s after ClearFaults`,
  );
  const instants = results.instants;
  out(
    `InjectFault (both appliances at once) answered ${Math.round(instants.injectAckedMs ?? NaN)} ms after it was sent; ` +
      `ClearFaults sent at +${Math.round(instants.clearFaultsSentMs)} ms, answered at +${Math.round(instants.clearFaultsAckedMs)} ms`,
  );
  out();
  out(failoverPhaseTable(results));
  out();
  out(failoverTargetTable(results));
  out();
  out(`p99 ms per 500 ms of completions (from InjectFault; ClearFaults at +${(results.instants.clearFaultsSentMs / 1000).toFixed(1)}s):`);
  for (const line of latencyTimelineLines(results)) out(`  ${line}`);
  out();
  for (const line of recoveryLines(results)) out(line);
  out();
  out('how this is measured:');
  for (const line of methodLines(results, settings)) out(`  ${line}`);
  out();
  out(`${results.deadZone} as the polls saw it (ms from InjectFault):`);
  for (const line of stateChangeLines(results)) out(`  ${line}`);
  const errors = failoverErrorLines(results);
  if (errors.length) {
    out();
    out('failed calls:');
    for (const line of errors) out(`  ${line}`);
  }
  const events = brokerEventLines(results);
  if (events.length) {
    out();
    out(`broker warnings and errors during the run (${brokerLog.warnings} warnings, ${brokerLog.errors} errors in its whole log):`);
    for (const line of events) out(`  ${line}`);
  }
  out();
  out(`JSON: ${relative(workspaceRoot, settings.jsonPath) || settings.jsonPath}`);
}

main().catch((error) => {
  // After Ctrl-C the runs fail because their processes were stopped: not news.
  if (started.interrupted) return;
  if (error instanceof UsageError) {
    process.stderr.write(`bench: ${error.message}\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`bench: failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
  // Stop the broker in order if it is still up; the exit handler kills the rest.
  const stopping = started.broker?.stop() ?? Promise.resolve();
  stopping.finally(() => process.exit(1));
});
