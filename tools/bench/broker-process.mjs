// Starts the built broker as a child process with a fresh data directory and
// an embedded SoftHSM fleet, and stops it again, workers included.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { descendantsOf } from './process-cpu.mjs';
import { own, waitForExit } from './owned-processes.mjs';

/**
 * The environment for processes the bench starts: the caller's, less any
 * broker or SoftHSM settings that would make the run depend on the shell it
 * was started from.
 */
export function cleanEnvironment() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HSMB_') && name !== 'SOFTHSM2_CONF'));
}

/**
 * @typedef {object} StartedBroker
 * @property {import('node:child_process').ChildProcess} child
 * @property {{ localZone: string, workersPerAppliance: number, timeouts: Record<string, number>, routing: Record<string, unknown> } | { error: string }} settings
 *   what the broker makes of its environment, read with its own loadConfig
 * @property {string} address      host:port actually bound
 * @property {string | undefined} adminAddress host:port of its admin listener (metrics)
 * @property {string[]} appliances appliance ids, in the broker's order
 * @property {number} startupMs
 * @property {() => number[]} workerPids   live appliance worker processes
 * @property {() => { warnings: number, errors: number, tail: string[] }} logSummary
 * @property {(listener: (entry: Record<string, unknown>) => void) => () => void} onLogEntry
 *   called with every JSON log line from now on; returns a function that stops it
 * @property {() => Promise<void>} stop
 */

/**
 * Starts `apps/broker/dist/main.js` on an ephemeral loopback port (port 0:
 * no race between picking a free port and binding it) and resolves once it
 * logs "hsm-broker serving", which it does only after the fleet is up and the
 * gRPC server is bound.
 * @param {object} options
 * @param {string} options.workspaceRoot
 * @param {string} options.dataDir
 * @param {string} options.localFleet      ZONESxPER_ZONE
 * @param {string} options.modulePath      SoftHSM module, given explicitly so the baseline loads the same one
 * @param {number} options.workersPerAppliance
 * @param {number} options.startTimeoutMs
 * @param {Record<string, string>} [options.env]  further broker settings (HSMB_FAULT_INJECTION, HSMB_CONFIG)
 * @returns {Promise<StartedBroker>}
 */
export async function startBroker({ workspaceRoot, dataDir, localFleet, modulePath, workersPerAppliance, startTimeoutMs, env = {} }) {
  const entry = join(workspaceRoot, 'apps', 'broker', 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build the broker first (npx tsc -b apps/broker)`);
  const startedAt = performance.now();
  const brokerEnv = {
    ...cleanEnvironment(),
    HSMB_LISTEN: '127.0.0.1:0',
    HSMB_ADMIN_LISTEN: '127.0.0.1:0',
    HSMB_DATA_DIR: dataDir,
    HSMB_LOCAL_FLEET: localFleet,
    HSMB_WORKERS_PER_APPLIANCE: String(workersPerAppliance),
    HSMB_SOFTHSM_MODULE: modulePath,
    ...env,
  };
  const settings = await resolvedSettings(workspaceRoot, brokerEnv);
  // BENCH_CPU_PROF=DIR profiles the broker's main process (node --cpu-prof; see profile-layers.mjs).
  const profileDir = process.env['BENCH_CPU_PROF'];
  const child = spawn(process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), entry], {
    cwd: workspaceRoot,
    env: brokerEnv,
    // Its own process group: a terminal's Ctrl-C reaches the bench only, which
    // then stops the broker in order; and a last-resort kill takes its workers too.
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  own(child, { group: true });
  const log = watchLog(child);
  let serving;
  try {
    serving = await log.waitFor('hsm-broker serving', startTimeoutMs);
  } catch (error) {
    // A broker that did not start is killed with its workers now: left
    // running, its pipes would keep the bench alive after its report.
    const pid = /** @type {number} */ (child.pid);
    const workers = descendantsOf(pid);
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await waitForExit(child, 5000);
    await waitForWorkersGone(workers);
    throw error;
  }
  const address = String(serving.address);
  const appliances = /** @type {string[]} */ (serving.appliances ?? []).map((entryText) => entryText.split('@')[0]);
  checkFleetLayout(dataDir, appliances);
  /** @type {number[]} */
  let lastWorkers = [];
  const pid = /** @type {number} */ (child.pid);
  return {
    child,
    settings,
    address,
    adminAddress: typeof serving.dashboard === 'string' && serving.dashboard.startsWith('http://') ? new URL(serving.dashboard).host : undefined,
    appliances,
    startupMs: performance.now() - startedAt,
    workerPids: () => (lastWorkers = descendantsOf(pid)),
    logSummary: log.summary,
    onLogEntry: log.onEntry,
    stop: async () => {
      lastWorkers = descendantsOf(pid);
      child.kill('SIGTERM');
      // The broker drains gRPC for up to 5 s, then stops its workers.
      if (!(await waitForExit(child, 20_000))) {
        process.kill(-pid, 'SIGKILL');
        await waitForExit(child, 5000);
      }
      await waitForWorkersGone(lastWorkers);
    },
  };
}

/**
 * The routing and timeout settings the broker will run with, read by the
 * broker's own configuration loader from the environment it is given, so the
 * report states the real values rather than a copy of the defaults.
 * @param {string} workspaceRoot
 * @param {Record<string, string | undefined>} env
 */
async function resolvedSettings(workspaceRoot, env) {
  try {
    const { loadConfig } = await import(pathToFileURL(join(workspaceRoot, 'apps', 'broker', 'dist', 'broker-config.js')).href);
    const config = loadConfig(env, workspaceRoot);
    return { localZone: config.localZone, workersPerAppliance: config.workersPerAppliance, timeouts: config.timeouts, routing: config.routing };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Parses the broker's JSON log lines (stderr), counts warnings and errors,
 * keeps a tail for diagnostics, and lets the caller wait for one message.
 * @param {import('node:child_process').ChildProcess} child
 */
function watchLog(child) {
  /** @type {string[]} */
  const tail = [];
  let warnings = 0;
  let errors = 0;
  /** @type {Array<(entry: Record<string, unknown>) => void>} */
  const listeners = [];
  createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stderr) }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return; // Not a log line (a worker's native library wrote to stderr): kept in the tail only.
    }
    if (entry.level === 'warn') warnings++;
    if (entry.level === 'error') errors++;
    for (const listener of listeners) listener(entry);
  });
  return {
    summary: () => ({ warnings, errors, tail: [...tail] }),
    /** @param {(entry: Record<string, unknown>) => void} listener */
    onEntry: (listener) => {
      listeners.push(listener);
      return () => {
        const index = listeners.indexOf(listener);
        if (index !== -1) listeners.splice(index, 1);
      };
    },
    /**
     * @param {string} message
     * @param {number} timeoutMs
     * @returns {Promise<Record<string, unknown>>}
     */
    waitFor: (message, timeoutMs) =>
      new Promise((resolve, reject) => {
        const fail = (why) => {
          clearTimeout(timer);
          reject(new Error(`broker did not start: ${why}\n--- broker log (last lines) ---\n${tail.join('\n')}`));
        };
        const timer = setTimeout(() => fail(`no "${message}" within ${timeoutMs} ms`), timeoutMs);
        child.once('exit', (code, signal) => fail(`it exited (${signal ?? code})`));
        listeners.push((entry) => {
          if (entry.message !== message) return;
          clearTimeout(timer);
          resolve(entry);
        });
      }),
  };
}

/** Checks that the broker laid out a token directory per appliance, as the baseline needs. */
function checkFleetLayout(dataDir, appliances) {
  if (appliances.length === 0) throw new Error('the broker reported no appliances');
  for (const id of appliances) {
    if (!existsSync(join(dataDir, 'fleet', id, 'softhsm2.conf'))) throw new Error(`appliance ${id} has no softhsm2.conf under ${dataDir}`);
  }
}

/**
 * How to reach one appliance's token without the broker: its SOFTHSM2_CONF
 * and its user PIN (from the owner-only secrets file the broker wrote).
 * @param {string} dataDir
 * @param {string} applianceId
 */
export function applianceAccess(dataDir, applianceId) {
  const pins = JSON.parse(readFileSync(join(dataDir, 'secrets', `${applianceId}.json`), 'utf8'));
  if (typeof pins.userPin !== 'string') throw new Error(`secrets/${applianceId}.json holds no userPin`);
  return { applianceId, softhsmConf: join(dataDir, 'fleet', applianceId, 'softhsm2.conf'), userPin: pins.userPin };
}

/**
 * Whether `pid` is a live broker appliance worker. A zombie counts as gone,
 * and so does a pid reused by an unrelated process: only a worker is killed.
 * @param {number} pid
 */
function isLiveWorker(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('appliance-worker-main');
  } catch {
    return false;
  }
}

/**
 * The baseline must not share the tokens with a live broker worker: wait
 * until every worker seen last has exited, then kill any that linger.
 * @param {number[]} pids
 */
async function waitForWorkersGone(pids) {
  const deadline = Date.now() + 10_000;
  while (pids.some(isLiveWorker) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const pid of pids.filter(isLiveWorker)) process.kill(pid, 'SIGKILL');
}
