#!/usr/bin/env node
// `npm run bench`: how many operations per second the broker serves, and what
// that costs against calling the same SoftHSM tokens directly.
//
//   1. start the built broker (fresh data dir, embedded 3-appliance fleet);
//   2. create a P-256 signing key and an AES-256 key through its API;
//   3. load it from several grpc-js client processes: Sign, then Encrypt;
//   4. stop it, then run pkcs11js loops on the same tokens and keys with as
//      many processes as the broker had workers, and with one process;
//   5. print a table and write reports/bench.json.
//
// Everything it starts is stopped on exit or Ctrl-C, every loop is bounded in
// time, and the data directory (it holds PINs) is removed.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkBenchCalls, createBenchKeys } from './bench-keys.mjs';
import { cpuTable, directLatencyTable, errorLines, resultsTable, writeJson } from './bench-report.mjs';
import { applianceAccess, cleanEnvironment, startBroker } from './broker-process.mjs';
import { summarize } from './latency-stats.mjs';
import { runMeasuringProcesses } from './measuring-processes.mjs';
import { signalAll } from './owned-processes.mjs';
import { startCpuWindow } from './process-cpu.mjs';

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));
const localFleet = '3x1';
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
  json: { type: 'string', default: 'reports/bench.json', help: 'where to write the JSON results (relative to the workspace)' },
  help: { type: 'boolean', default: false, help: 'print this help' },
};

function usage() {
  const lines = ['usage: npm run bench -- [options]', ''];
  for (const [name, spec] of Object.entries(optionSpecs)) {
    const range = spec.min === undefined ? '' : ` (${spec.min}-${spec.max})`;
    lines.push(`  --${name.padEnd(12)} ${spec.help}${range}${spec.type === 'boolean' ? '' : `, default ${spec.default}`}`);
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
  return {
    help: false,
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

/**
 * Adds what the machine spent outside the bench's own processes: builds or
 * tests running beside the bench take cores from it, and the table must say so.
 */
function withOther(percent) {
  const own = Object.entries(percent).filter(([name]) => name !== 'machine');
  if (percent.machine === null || own.some(([, value]) => value === null)) return { ...percent, other: null };
  return { ...percent, other: Math.max(0, percent.machine - own.reduce((sum, [, value]) => sum + value, 0)) };
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
const started = { /** @type {string | undefined} */ dataDir: undefined, /** @type {any} */ broker: undefined, interrupted: false };

function removeDataDir() {
  if (started.dataDir) rmSync(started.dataDir, { recursive: true, force: true });
  started.dataDir = undefined;
}

function installShutdown() {
  // Last resort, synchronous: whatever still runs is killed and the PINs removed.
  process.on('exit', () => {
    signalAll('SIGKILL');
    removeDataDir();
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
  const perScenarioS = (options.warmupMs + options.durationMs) / 1000;
  progress(`${operations.length} operations × 3 runs × ${perScenarioS} s, plus start-up: about ${Math.ceil(operations.length * 3 * perScenarioS + 20)} s`);

  started.dataDir = mkdtempSync(join(os.tmpdir(), 'hsmb-bench-'));
  progress(`starting the broker (${localFleet} local fleet, ${options.workersPerAppliance} workers per appliance, data in ${started.dataDir})`);
  const broker = await startBroker({
    workspaceRoot,
    dataDir: started.dataDir,
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
    progress(`broker ${scenario.operation}: ${options.clients} load generators × ${options.concurrency} in flight for ${perScenarioS} s`);
    brokerResults[scenario.operation] = await measureBroker(broker, scenario, keys[scenario.operation], options);
  }
  const brokerLog = broker.logSummary();
  progress('stopping the broker so the baseline has the tokens to itself');
  await broker.stop();
  started.broker = undefined;

  const access = broker.appliances.map((id) => applianceAccess(/** @type {string} */ (started.dataDir), id));
  const sameCount = broker.appliances.length * options.workersPerAppliance;
  const directResults = {};
  let library;
  for (const scenario of operations) {
    progress(`direct ${scenario.operation}: ${sameCount} processes for ${perScenarioS} s`);
    const direct = await measureDirect(access, scenario, keys[scenario.operation], sameCount, options);
    progress(`direct ${scenario.operation}: 1 process for ${perScenarioS} s`);
    const single = await measureDirect(access, scenario, keys[scenario.operation], 1, options);
    directResults[scenario.operation] = { direct: direct.summary, directSingle: single.summary };
    library ??= direct.library;
  }
  removeDataDir();

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
