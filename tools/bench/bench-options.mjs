// The bench's flags, read and checked once: a bad value names the flag, the
// value and what is allowed.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchOperations } from './bench-operations.mjs';

/** The report's sections, in the order they run. */
export const sections = ['floor', 'broker', 'latency', 'soak', 'ceiling', 'scaling', 'failover'];

const optionSpecs = {
  quick: { type: 'boolean', default: false, help: 'smoke run: 1 s warm-up, 2 s windows, 5 s soak, scaling over 1 and 2 appliances' },
  only: { type: 'string', default: sections.join(','), help: `comma-separated sections: ${sections.join(', ')}` },
  operations: { type: 'string', default: benchOperations.map((operation) => operation.id).join(','), help: 'comma-separated operations' },
  soak: { type: 'string', default: '5m', help: 'soak at peak: seconds, or Ns / Nm (quick: 5s)' },
  duration: { type: 'string', default: '8', min: 1, max: 120, help: 'measured seconds per run (quick: 2)' },
  warmup: { type: 'string', default: '2', min: 0, max: 30, help: 'unmeasured seconds before each window (quick: 1)' },
  workers: { type: 'string', default: '2', min: 1, max: 8, help: 'broker worker processes per appliance (HSMB_WORKERS_PER_APPLIANCE)' },
  sessions: { type: 'string', default: '1', min: 1, max: 64, help: 'PKCS#11 sessions per worker process (HSMB_SESSIONS_PER_WORKER)' },
  'appliance-latency': { type: 'string', default: '0', min: 0, max: 100, help: 'ms added to every appliance call (an injected LATENCY fault), as a network HSM round trip would' },
  appliances: { type: 'string', default: '3', min: 1, max: 6, help: 'appliances of the main broker (the other sections)' },
  scaling: { type: 'string', default: '1,2,3,6', help: 'appliance counts of the scaling section (each 1-6; quick: 1,2)' },
  'h2load-clients': { type: 'string', default: '8', min: 1, max: 64, help: 'h2load connections (-c)' },
  'h2load-streams': { type: 'string', default: '16', min: 1, max: 256, help: 'h2load streams in flight per connection (-m)' },
  'h2load-threads': { type: 'string', default: '1', min: 1, max: 8, help: 'h2load threads (-t)' },
  'batch-generators': { type: 'string', default: '2', min: 1, max: 16, help: 'grpc-js processes for batch calls' },
  'batch-in-flight': { type: 'string', default: '2', min: 1, max: 64, help: 'batch calls in flight per process' },
  'stream-generators': { type: 'string', default: '2', min: 1, max: 16, help: 'grpc-js processes for SignStream' },
  'stream-in-flight': { type: 'string', default: '128', min: 1, max: 256, help: 'requests in flight on each SignStream' },
  module: { type: 'string', default: '/usr/lib/softhsm/libsofthsm2.so', help: 'SoftHSM PKCS#11 module' },
  out: { type: 'string', default: 'reports', help: 'directory for bench.md, bench.svg and bench.json (relative to the workspace)' },
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

/** A flag with a bad value; the message names it. */
export class UsageError extends Error {}

/** The help text. */
export function usage() {
  const lines = ['usage: npm run bench -- [options]', '', `Without --only, every section runs: ${sections.join(', ')}.`, ''];
  const width = Math.max(...Object.keys(optionSpecs).map((name) => name.length));
  for (const [name, spec] of Object.entries(optionSpecs)) {
    const range = 'min' in spec ? ` (${spec.min}-${spec.max})` : '';
    lines.push(`  --${name.padEnd(width)} ${spec.help}${range}${spec.type === 'boolean' ? '' : `, default ${spec.default}`}`);
  }
  return lines.join('\n');
}

/**
 * Seconds from `300`, `300s` or `5m`.
 * @param {string} raw
 */
export function parseSeconds(raw) {
  const match = /^(\d+)(s|m)?$/.exec(raw);
  const seconds = match ? Number(match[1]) * (match[2] === 'm' ? 60 : 1) : NaN;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new UsageError(`--soak: ${JSON.stringify(raw)} is not valid; expected 1 to 3600 seconds as N, Ns or Nm`);
  return seconds;
}

/**
 * A comma-separated list, each entry one of `allowed`.
 * @param {string} name
 * @param {string} raw
 * @param {string[]} allowed
 */
function listOf(name, raw, allowed) {
  const entries = raw.split(',').map((entry) => entry.trim()).filter(Boolean);
  const unknown = entries.filter((entry) => !allowed.includes(entry));
  if (entries.length === 0 || unknown.length) throw new UsageError(`--${name}: ${JSON.stringify(unknown.join(',') || raw)} is not valid; expected some of ${allowed.join(', ')}`);
  return entries;
}

/**
 * @param {string[]} argv
 * @param {string} workspaceRoot
 */
export function parseOptions(argv, workspaceRoot) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: Object.fromEntries(Object.entries(optionSpecs).map(([name, { type }]) => [name, { type }])), strict: true }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return { help: true };
  const given = (name) => values[name] !== undefined;
  const quick = values.quick === true;
  const raw = (name, quickValue) => (given(name) ? values[name] : quick && quickValue !== undefined ? quickValue : optionSpecs[name].default);
  const integer = (name, quickValue) => {
    const { min, max } = optionSpecs[name];
    const text = raw(name, quickValue);
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: ${JSON.stringify(text)} is not valid; expected an integer from ${min} to ${max}`);
    return n;
  };
  const scaling = listOf('scaling', raw('scaling', '1,2'), ['1', '2', '3', '4', '5', '6']).map(Number);
  const out = resolve(workspaceRoot, raw('out'));
  return {
    help: false,
    quick,
    sections: listOf('only', raw('only'), sections),
    operations: listOf('operations', raw('operations'), benchOperations.map((operation) => operation.id)),
    soakS: parseSeconds(raw('soak', '5s')),
    warmupS: integer('warmup', '1'),
    durationS: integer('duration', '2'),
    workersPerAppliance: integer('workers'),
    sessionsPerWorker: integer('sessions'),
    applianceLatencyMs: integer('appliance-latency'),
    appliances: integer('appliances'),
    scaling,
    h2load: { clients: integer('h2load-clients'), streams: integer('h2load-streams'), threads: integer('h2load-threads') },
    batch: { generators: integer('batch-generators'), inFlight: integer('batch-in-flight') },
    stream: { generators: integer('stream-generators'), inFlight: integer('stream-in-flight') },
    modulePath: raw('module'),
    outDir: out,
    failover: {
      ratePerSec: integer('rate'),
      generators: integer('generators'),
      callTimeoutMs: integer('deadline'),
      warmupMs: integer('warmup', '1') * 1000,
      beforeMs: integer('before') * 1000,
      duringMs: integer('during') * 1000,
      afterMs: integer('after') * 1000,
      pollMs: integer('poll'),
      workersPerAppliance: 1,
      messageBytes: 32,
      jsonPath: resolve(workspaceRoot, raw('failover-json')),
    },
  };
}
