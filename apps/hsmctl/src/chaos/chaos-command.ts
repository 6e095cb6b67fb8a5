import { randomInt } from 'node:crypto';
import { UsageError, type ParsedOptions } from '../command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from '../command.js';
import { formatDuration, parseDuration } from '../duration-text.js';
import { isFaultKind, type FaultKindName } from '../faults/fault-action.js';
import { openFaultDriver, readTopology, type FaultTarget } from '../faults/fault-target.js';
import { readHistory } from '../load/call-history.js';
import { connectionFromOptions } from '../load/broker-connection.js';
import { LiveProgress } from '../load/live-progress.js';
import { defaultLoadProfile, scaleRates, type LoadProfile } from '../load/load-profile.js';
import { encodeJson, encodeText, writeOutput } from '../output-format.js';
import { brokerReadBack } from './broker-read-back.js';
import { runChaos } from './chaos-run.js';
import { renderCheckReport, renderSchedule } from './check-view.js';
import { scheduleFaultKinds } from './fault-schedule.js';
import { checkHistory } from './history-checker.js';

/** The address hsmctl uses when none is given (kept in step with cli.ts). */
const fallbackAddress = '127.0.0.1:50051';

/** `--target`, `--compose-project`, shared by chaos and gameday. */
export const targetOptions = {
  target: {
    type: 'string',
    valueName: 'injection|docker',
    description: "What breaks the fleet: the broker's fault injection (default) or the compose project's containers",
  },
  'compose-project': {
    type: 'string',
    valueName: 'NAME',
    description: 'Compose project of the docker target (default: $COMPOSE_PROJECT_NAME, else hsm-broker)',
  },
} as const;

/** The fault target named by `--target` and `--compose-project`. */
export function readTarget(options: ParsedOptions, env: Readonly<Record<string, string | undefined>>): FaultTarget {
  const target = options.string('target') ?? 'injection';
  if (target === 'injection') return { kind: 'injection' };
  if (target === 'docker') {
    return { kind: 'docker', project: options.string('compose-project') ?? env['COMPOSE_PROJECT_NAME'] ?? 'hsm-broker' };
  }
  throw new UsageError(`--target: expected injection or docker, got '${target}'`);
}

function readKinds(options: ParsedOptions): FaultKindName[] | undefined {
  const text = options.string('faults');
  if (text === undefined) return undefined;
  const kinds = text.split(',').map((kind) => kind.trim()).filter((kind) => kind !== '');
  for (const kind of kinds) {
    if (!isFaultKind(kind) || kind === 'start' || kind === 'unpause' || kind === 'heal' || kind === 'clear') {
      throw new UsageError(`--faults: '${kind}' is not a breaking fault; expected some of ${scheduleFaultKinds.join(', ')}, restartBroker`);
    }
  }
  if (kinds.length === 0) throw new UsageError('--faults: name at least one fault');
  return kinds as FaultKindName[];
}

function readProfile(options: ParsedOptions): LoadProfile {
  const scale = options.decimal('rate-scale', { min: 0.01, max: 100 }) ?? 1;
  return {
    ...defaultLoadProfile,
    rates: scaleRates(defaultLoadProfile.rates, scale),
    deadlineMs: options.integer('call-deadline-ms', { min: 50, max: 600_000 }) ?? defaultLoadProfile.deadlineMs,
    processes: options.integer('processes', { min: 1, max: 16 }) ?? 1,
  };
}

async function checkOnly(context: CommandContext, file: string, json: boolean): Promise<number> {
  const report = await checkHistory(await readHistory(file), brokerReadBack(context.client()));
  await writeOutput(context.io.stdout, undefined, json ? encodeJson(report) : encodeText(renderCheckReport(report)));
  return report.violations.length === 0 ? ExitCode.ok : ExitCode.verificationFailed;
}

/** `hsmctl chaos`: a seeded random fault schedule under mixed load, then a history check. */
export const chaosCommand: CommandSpec = {
  path: ['chaos'],
  synopsis: '[--seed N] [--duration 5m] [--target injection|docker] [--faults LIST] [--history FILE]',
  summary: 'Run a random fault schedule under mixed load and check the history',
  description:
    'Draws a schedule of faults from the seed (the same seed draws the same schedule), runs the mixed load ' +
    '(encrypt, decrypt, sign, verify, MAC, data keys, one CreateKey a second, a RotateKey now and then) while the ' +
    'faults happen, writes every call to the history file (JSON lines: op, key, input digest, result code, start ' +
    'and end time, deadline), puts the fleet back and checks the history: every acknowledged CreateKey, RotateKey ' +
    'and ciphertext is readable, every signature verifies with node:crypto, no call ended with a code outside ' +
    'UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED, and none ran more than 100 ms past its deadline. ' +
    'Faults stay within one zone at a time unless --multiple-zones is given. Exit status 3 when the check finds ' +
    'violations. The injection target needs a broker started with HSMB_FAULT_INJECTION=1; it cannot zeroize, ' +
    'and the docker target cannot slow a link, so those are left out of their schedules.',
  options: {
    seed: { type: 'string', valueName: 'N', description: 'Seed of the schedule (default: a random one, printed)' },
    duration: { type: 'string', valueName: 'TIME', description: 'How long the load runs: 30s, 5m, ... (default 5m)' },
    ...targetOptions,
    faults: {
      type: 'string',
      valueName: 'LIST',
      description: `Fault kinds to draw, comma-separated (default: ${scheduleFaultKinds.join(',')}, less what the target cannot do)`,
    },
    'multiple-zones': { type: 'boolean', description: 'Allow faults in more than one zone at once' },
    'rate-scale': { type: 'string', valueName: 'X', description: 'Multiply the load rates (default 1: about 86 calls/s)' },
    'call-deadline-ms': { type: 'string', valueName: 'MS', description: 'Deadline of each load call (default 2000)' },
    processes: { type: 'string', valueName: 'N', description: 'Load processes to fork (default 1)' },
    history: { type: 'string', valueName: 'FILE', description: 'History file to write (default chaos-SEED.jsonl)' },
    check: { type: 'string', valueName: 'FILE', description: 'Only check an existing history file against the broker' },
    json: { type: 'boolean', description: 'Print the check report as JSON' },
  },
  async run(context) {
    const { options, io } = context;
    const json = options.flag('json');
    const checkFile = options.string('check');
    if (checkFile !== undefined) return checkOnly(context, checkFile, json);

    const seed = options.integer('seed', { min: 0, max: 0xffff_ffff }) ?? randomInt(0, 0xffff_ffff);
    const durationMs = parseDuration(options.string('duration') ?? '5m', '--duration', { minMs: 5000, maxMs: 24 * 3_600_000 });
    const target = readTarget(options, io.env);
    const profile = readProfile(options);
    const historyPath = options.string('history') ?? `chaos-${String(seed)}.jsonl`;
    const requested = readKinds(options);
    const client = context.client();
    const topology = await readTopology(client);
    const driver = openFaultDriver(target, client, topology);
    const kinds = (requested ?? scheduleFaultKinds).filter((kind) => {
      const reason = driver.unsupported(kind);
      if (reason !== undefined && requested !== undefined) throw new UsageError(`--faults: ${reason}`);
      return reason === undefined;
    });

    io.stderr.write(`Chaos: seed ${String(seed)}, ${formatDuration(durationMs)}, target ${driver.name}, history ${historyPath}\n`);
    const progress = new LiveProgress(io.stderr, 'Chaos', durationMs);
    const result = await runChaos({
      client,
      connection: connectionFromOptions(options, io.env, fallbackAddress),
      driver,
      topology,
      seed,
      durationMs,
      profile,
      historyPath,
      kinds,
      multipleZones: options.flag('multiple-zones'),
      onRecord: (record) => progress.note(record),
      onStage: (stage, schedule) => {
        if (stage === 'load') {
          io.stderr.write(renderSchedule(schedule));
          progress.start();
        } else if (stage === 'restore') {
          progress.finish();
        } else {
          io.stderr.write('Checking the history against the broker...\n');
        }
      },
    });
    if (!result.recovered) io.stderr.write('Warning: the fleet was not fully healthy again before the check\n');
    const summary = {
      seed,
      durationMs,
      target: driver.name,
      historyPath,
      schedule: result.schedule,
      ...result.totals,
      recovered: result.recovered,
      ...result.report,
    };
    await writeOutput(
      io.stdout,
      undefined,
      json
        ? encodeJson(summary)
        : encodeText(
            `Seed ${String(seed)}: ${String(result.totals.issued)} calls issued, ${String(result.totals.shed)} shed, ${String(result.schedule.length)} fault actions\n` +
              renderCheckReport(result.report),
          ),
    );
    return result.report.violations.length === 0 ? ExitCode.ok : ExitCode.verificationFailed;
  },
};

