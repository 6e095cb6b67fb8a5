import {
  ApplianceStatus,
  ClearFaultsResponse,
  FaultKind,
  GetFleetStatusResponse,
  ResyncKeysResponse,
  ZoneStatus,
  type BrokerClient,
} from '@hsm-broker/client';
import { BrokerError, Code } from '@hsm-broker/errors';
import { UsageError, type ParsedOptions } from './command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from './command.js';
import { enumNames, parseEnumValue } from './enum-names.js';
import { renderAppliances, renderFleetStatus, renderResyncReport, renderZoneChange } from './fleet-table.js';
import { fleetWatchCommand } from './fleet-watch.js';
import {
  encodeJson,
  encodeText,
  outputOption,
  reportFormats,
  resolveOutputTarget,
  writeOutput,
} from './output-format.js';
import { maxUint32 } from './shared-options.js';

const reportOutput = { output: outputOption(reportFormats, 'text') };

function reportFormat(context: CommandContext): 'text' | 'json' {
  return resolveOutputTarget(context.options, reportFormats, 'text', false).format === 'json' ? 'json' : 'text';
}

async function printAppliance(
  context: CommandContext,
  format: 'text' | 'json',
  appliance: ApplianceStatus | undefined,
): Promise<number> {
  if (appliance === undefined) throw new BrokerError(Code.INTERNAL, 'the broker answered without appliance status');
  const bytes =
    format === 'json' ? encodeJson(ApplianceStatus.toJSON(appliance)) : encodeText(renderAppliances([appliance]));
  await writeOutput(context.io.stdout, undefined, bytes);
  return ExitCode.ok;
}

const fleetStatusCommand: CommandSpec = {
  path: ['fleet', 'status'],
  synopsis: '[--output text|json]',
  summary: 'Show zones and appliances',
  description:
    'Zones, with the ones taken out of rotation by `fleet fence` marked FENCED. One row per appliance: ' +
    'state, circuit breaker and how often it opened (EJECTIONS), whether it is drained, calls in flight, ' +
    'requests and failures so far, latency (moving average), key versions held (KEYS) and expected but ' +
    'missing (MISSING), worker processes and their restarts; then orphans (key objects the registry does ' +
    'not know, which are reported and never deleted), injected faults and last errors.',
  options: reportOutput,
  async run(context) {
    const format = reportFormat(context);
    const status = await context.client().getFleetStatus();
    await writeOutput(
      context.io.stdout,
      undefined,
      format === 'json' ? encodeJson(GetFleetStatusResponse.toJSON(status)) : encodeText(renderFleetStatus(status)),
    );
    return ExitCode.ok;
  },
};

/** `fleet drain` / `fleet undrain`: one APPLIANCE argument, prints the appliance afterwards. */
function applianceCommand(
  word: string,
  summary: string,
  description: string,
  call: (client: BrokerClient, applianceId: string) => Promise<{ appliance?: ApplianceStatus }>,
): CommandSpec {
  return {
    path: ['fleet', word],
    synopsis: 'APPLIANCE [--output text|json]',
    summary,
    description,
    positionals: ['APPLIANCE'],
    options: reportOutput,
    async run(context) {
      const format = reportFormat(context);
      const response = await call(context.client(), context.positionals[0] ?? '');
      return printAppliance(context, format, response.appliance);
    },
  };
}

/** `fleet fence` / `fleet unfence`: one ZONE argument, prints the zone afterwards. */
function zoneCommand(
  word: 'fence' | 'unfence',
  summary: string,
  description: string,
  call: (client: BrokerClient, zone: string) => Promise<{ zone?: ZoneStatus }>,
): CommandSpec {
  return {
    path: ['fleet', word],
    synopsis: 'ZONE [--output text|json]',
    summary,
    description,
    positionals: ['ZONE'],
    options: reportOutput,
    async run(context) {
      const format = reportFormat(context);
      const { zone } = await call(context.client(), context.positionals[0] ?? '');
      if (zone === undefined) throw new BrokerError(Code.INTERNAL, 'the broker answered without zone status');
      const bytes =
        format === 'json'
          ? encodeJson(ZoneStatus.toJSON(zone))
          : encodeText(renderZoneChange(word === 'fence' ? 'Fenced' : 'Unfenced', zone));
      await writeOutput(context.io.stdout, undefined, bytes);
      return ExitCode.ok;
    },
  };
}

/** The InjectFault request fields from the command line, checked before anything is sent. */
function readFaultOptions(options: ParsedOptions): {
  kind: FaultKind;
  probability: number;
  latencyMs: number;
  durationMs: number;
} {
  const kind = parseEnumValue(FaultKind, options.requiredString('kind'), '--kind') as FaultKind;
  const probability = options.decimal('probability', { min: 0, max: 1 }) ?? 0;
  // The broker refuses a zero latency: it would be a fault that does nothing.
  const latencyMs = options.integer('latency-ms', { min: 1, max: maxUint32 });
  const durationMs = options.integer('duration-ms', { min: 0, max: maxUint32 }) ?? 0;
  // A latency fault without a latency, or a latency on another kind, is a
  // rehearsal that would not do what the operator thinks.
  if (kind === FaultKind.LATENCY && latencyMs === undefined) {
    throw new UsageError('--kind LATENCY needs --latency-ms');
  }
  if (kind !== FaultKind.LATENCY && latencyMs !== undefined) {
    throw new UsageError('--latency-ms applies to --kind LATENCY only');
  }
  return { kind, probability, latencyMs: latencyMs ?? 0, durationMs };
}

const injectCommand: CommandSpec = {
  path: ['fleet', 'inject'],
  synopsis:
    'APPLIANCE --kind ERROR|LATENCY|HANG|CRASH [--probability P] [--latency-ms N] [--duration-ms N] [--output text|json]',
  summary: 'Make an appliance fail on purpose (failure rehearsal)',
  description:
    'ERROR fails calls with CKR_DEVICE_ERROR, LATENCY delays them by --latency-ms, HANG makes them never ' +
    'return (until the broker gives up on the worker), CRASH kills the worker process. The fault lasts ' +
    '--duration-ms, or until `hsmctl fleet clear`. The broker refuses this (FAILED_PRECONDITION) unless it ' +
    'runs with HSMB_FAULT_INJECTION=1.',
  positionals: ['APPLIANCE'],
  options: {
    kind: { type: 'string', valueName: 'KIND', description: `What goes wrong (required): ${enumNames(FaultKind).join(', ')}` },
    probability: {
      type: 'string',
      valueName: 'P',
      description: 'Chance that a call is affected, 0 to 1 (default: 0, which means every call)',
    },
    'latency-ms': {
      type: 'string',
      valueName: 'N',
      description: 'Delay added to each affected call, in milliseconds, at least 1 (required with LATENCY, only for LATENCY)',
    },
    'duration-ms': {
      type: 'string',
      valueName: 'N',
      description: 'How long the fault lasts, in milliseconds (default: 0, which means until cleared)',
    },
    ...reportOutput,
  },
  async run(context) {
    const fault = readFaultOptions(context.options);
    const format = reportFormat(context);
    const response = await context.client().injectFault({ applianceId: context.positionals[0] ?? '', ...fault });
    return printAppliance(context, format, response.appliance);
  },
};

const clearCommand: CommandSpec = {
  path: ['fleet', 'clear'],
  synopsis: '[APPLIANCE] [--output text|json]',
  summary: 'Remove injected faults from one appliance, or from all',
  optionalPositionals: ['APPLIANCE'],
  options: reportOutput,
  async run(context) {
    const format = reportFormat(context);
    const response = await context.client().clearFaults({ applianceId: context.positionals[0] ?? '' });
    const text = `Cleared ${String(response.cleared)} ${response.cleared === 1 ? 'fault' : 'faults'}.\n`;
    await writeOutput(
      context.io.stdout,
      undefined,
      format === 'json' ? encodeJson(ClearFaultsResponse.toJSON(response)) : encodeText(text),
    );
    return ExitCode.ok;
  },
};

const resyncCommand: CommandSpec = {
  path: ['fleet', 'resync'],
  synopsis: '[APPLIANCE] [--output text|json]',
  summary: "Check appliances' key inventories now and copy missing key versions",
  description:
    'The broker does this in the background as well; resync does it at once, for one appliance or ' +
    '(without an argument) for all. Prints how many appliances were checked, the key versions copied ' +
    'to appliances that lacked them, the copies found lost, appliances newly enrolled with the fleet ' +
    'key, orphans (reported, never deleted) and the repairs that could not be made. Exits 1 when ' +
    'any repair could not be made.',
  optionalPositionals: ['APPLIANCE'],
  options: reportOutput,
  async run(context) {
    const format = reportFormat(context);
    const report = await context.client().resyncKeys({ applianceId: context.positionals[0] ?? '' });
    await writeOutput(
      context.io.stdout,
      undefined,
      format === 'json' ? encodeJson(ResyncKeysResponse.toJSON(report)) : encodeText(renderResyncReport(report)),
    );
    // The call worked, but the fleet is not whole: scripts must be able to tell.
    return report.failures.length > 0 ? ExitCode.failure : ExitCode.ok;
  },
};

/** The `fleet ...` commands. */
export const fleetCommands: readonly CommandSpec[] = [
  fleetStatusCommand,
  fleetWatchCommand,
  applianceCommand(
    'drain',
    'Stop sending new work to an appliance',
    'Calls in flight finish; the appliance stays out of rotation until `hsmctl fleet undrain`.',
    (client, applianceId) => client.drainAppliance({ applianceId }),
  ),
  applianceCommand(
    'undrain',
    'Return a drained appliance to rotation',
    'The broker ramps its share of traffic up gradually (slow start).',
    (client, applianceId) => client.undrainAppliance({ applianceId }),
  ),
  zoneCommand(
    'fence',
    'Take every appliance of a zone out of rotation',
    'For zone maintenance: no new work goes to the zone until `hsmctl fleet unfence`.',
    (client, zone) => client.fenceZone({ zone }),
  ),
  zoneCommand('unfence', 'Return a fenced zone to rotation', 'Its appliances take work again.', (client, zone) =>
    client.unfenceZone({ zone }),
  ),
  resyncCommand,
  injectCommand,
  clearCommand,
];
