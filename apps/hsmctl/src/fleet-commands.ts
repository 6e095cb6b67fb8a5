import { GetFleetStatusResponse } from '@hsm-broker/client';
import { ExitCode, type CommandSpec } from './command.js';
import { renderFleetStatus } from './fleet-table.js';
import {
  encodeJson,
  encodeText,
  outputOption,
  reportFormats,
  resolveOutputTarget,
  writeOutput,
} from './output-format.js';

const fleetStatusCommand: CommandSpec = {
  path: ['fleet', 'status'],
  synopsis: '[--output text|json]',
  summary: 'Show zones and appliances',
  description:
    'One row per appliance: state, calls in flight, requests and failures so far, latency ' +
    '(moving average), key objects held, worker processes and their restarts.',
  options: { output: outputOption(reportFormats, 'text') },
  async run(context) {
    const { format } = resolveOutputTarget(context.options, reportFormats, 'text', false);
    const status = await context.client().getFleetStatus();
    await writeOutput(
      context.io.stdout,
      undefined,
      format === 'json' ? encodeJson(GetFleetStatusResponse.toJSON(status)) : encodeText(renderFleetStatus(status)),
    );
    return ExitCode.ok;
  },
};

/** The `fleet ...` commands. */
export const fleetCommands: readonly CommandSpec[] = [fleetStatusCommand];
