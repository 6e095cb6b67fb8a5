import { basename } from 'node:path';
import { ExitCode, type CommandSpec } from '../command.js';
import { formatDuration } from '../duration-text.js';
import { openFaultDriver, readTopology } from '../faults/fault-target.js';
import { connectionFromOptions } from '../load/broker-connection.js';
import { LiveProgress } from '../load/live-progress.js';
import { encodeText, writeOutput } from '../output-format.js';
import { readTarget, targetOptions } from '../chaos/chaos-command.js';
import { runGameDay } from './gameday-run.js';
import { loadScenarioFile } from './scenario-file.js';

/** The address hsmctl uses when none is given (kept in step with cli.ts). */
const fallbackAddress = '127.0.0.1:50051';

/** `hsmctl gameday run SCENARIO.yaml`. */
export const gamedayRunCommand: CommandSpec = {
  path: ['gameday', 'run'],
  synopsis: 'SCENARIO.yaml [--report-dir DIR] [--target injection|docker]',
  summary: 'Run a game-day scenario file and write its report',
  description:
    'A scenario file names a target, a load profile and timed fault steps (see examples/gamedays/). ' +
    'The mixed load runs for the scenario\'s duration while the steps happen, with a live progress line on stderr; ' +
    'then the report directory holds summary.md (per phase: calls, errors by code, p50/p99, time to shift ' +
    'traffic away from the faulty part and time to repair, read from GetFleetStatus every 200 ms), latency.svg ' +
    '(latency over time with the steps marked), report.json (everything raw) and history.jsonl (every call). ' +
    'The file is validated first: a mistake names the field. --target overrides the file\'s target.',
  positionals: ['SCENARIO'],
  options: {
    'report-dir': { type: 'string', valueName: 'DIR', description: 'Where to write the report (default gameday-NAME-TIME)' },
    ...targetOptions,
  },
  async run(context) {
    const { options, io } = context;
    const file = context.positionals[0] ?? '';
    const scenario = await loadScenarioFile(file);
    if (options.has('target')) scenario.target = readTarget(options, io.env);
    const reportDir =
      options.string('report-dir') ?? `gameday-${scenario.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const client = context.client();
    const topology = await readTopology(client);
    const driver = openFaultDriver(scenario.target, client, topology);
    io.stderr.write(
      `Game day ${scenario.name} (${basename(file)}): ${formatDuration(scenario.durationMs)}, ${String(scenario.steps.length)} steps, target ${driver.name}\n`,
    );
    let progress: LiveProgress | undefined;
    const phases = scenario.steps.map((step) => step.phase);
    let faultIndex = 0;
    try {
      const result = await runGameDay({
        scenario,
        client,
        connection: connectionFromOptions(options, io.env, fallbackAddress),
        driver,
        topology,
        reportDir,
        onStart: (origin) => {
          progress = new LiveProgress(io.stderr, scenario.name, scenario.durationMs, origin);
          progress.phase('baseline');
          progress.start();
        },
        onRecord: (record) => {
          progress?.note(record);
          if (record.type === 'fault') {
            progress?.phase(phases[faultIndex] ?? record.description);
            faultIndex += 1;
          }
        },
      });
      progress?.finish();
      progress = undefined;
      const { total } = result.analysis;
      const failed = total.calls - total.ok;
      await writeOutput(
        io.stdout,
        undefined,
        encodeText(
          `Game day ${scenario.name}: ${String(total.calls)} calls, ${String(failed)} failed; report in ${reportDir}/ ` +
            `(summary.md, latency.svg, report.json, history.jsonl)\n`,
        ),
      );
      return ExitCode.ok;
    } finally {
      progress?.finish();
    }
  },
};
