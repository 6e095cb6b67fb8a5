import { KeySpec, KeyUsage, RebuildRegistryResponse } from '@hsm-broker/client';
import { ExitCode, type CommandSpec } from './command.js';
import { enumName } from './enum-names.js';
import { encodeJson, encodeText, outputOption, reportFormats, resolveOutputTarget, writeOutput } from './output-format.js';

/** The text form of a rebuild report: one block per key, then what was skipped or failed. */
export function renderRebuildReport(report: RebuildRegistryResponse): string {
  const lines: string[] = [];
  const verb = report.dryRun ? 'Would register' : 'Registered';
  lines.push(
    `${verb} ${String(report.keys.length)} key${report.keys.length === 1 ? '' : 's'} from ${String(report.appliancesScanned)} appliance${report.appliancesScanned === 1 ? '' : 's'}, every one DISABLED.`,
  );
  for (const key of report.keys) {
    const metadata = key.keyMetadata;
    if (metadata === undefined) continue;
    const versions = metadata.versions
      .map((version) => `v${String(version.version)}@${version.replicas.map((replica) => replica.applianceId).join('+')}`)
      .join(' ');
    lines.push(
      `  ${metadata.keyId}  ${enumName(KeySpec, metadata.keySpec)}  ${enumName(KeyUsage, metadata.keyUsage)}  primary v${String(metadata.primaryVersion)}  ${versions}`,
    );
    for (const note of key.notes) lines.push(`    note: ${note}`);
  }
  if (report.alreadyRegistered.length > 0) {
    lines.push(`Already registered, left unchanged: ${report.alreadyRegistered.join(', ')}`);
  }
  for (const failure of report.failures) lines.push(`Failed: ${failure}`);
  if (report.keys.length > 0) {
    lines.push(
      report.dryRun
        ? 'Nothing was written (dry run).'
        : "Review each key (description, labels, rotation), then 'hsmctl keys enable KEY' to use it again.",
    );
  }
  return `${lines.join('\n')}\n`;
}

const rebuildCommand: CommandSpec = {
  path: ['registry', 'rebuild'],
  synopsis: '[--dry-run] [--output text|json]',
  summary: 'Rebuild lost key metadata from the key objects on the appliances',
  description:
    'After the metadata store was lost, the broker lists every key object on every appliance and ' +
    'registers the key ids it does not hold: spec, usage, versions and replica locations come from ' +
    "the objects' labels and attributes. What HSMs do not store (state, description, labels, rotation " +
    'settings, creation time) cannot come back: every rebuilt key is DISABLED, with a note in its ' +
    'description, until an operator enables it. Keys already registered are left unchanged, so it is ' +
    'safe to run twice. Runs against a running broker; needs the key-admin or fleet-operator role. ' +
    'Exits 1 when an appliance could not be read or an object could not be understood.',
  options: {
    'dry-run': { type: 'boolean', description: 'Report what would be registered without writing anything' },
    output: outputOption(reportFormats, 'text'),
  },
  async run(context) {
    const format = resolveOutputTarget(context.options, reportFormats, 'text', false).format === 'json' ? 'json' : 'text';
    const report = await context.client().rebuildRegistry({ dryRun: context.options.flag('dry-run') });
    await writeOutput(
      context.io.stdout,
      undefined,
      format === 'json' ? encodeJson(RebuildRegistryResponse.toJSON(report)) : encodeText(renderRebuildReport(report)),
    );
    return report.failures.length > 0 ? ExitCode.failure : ExitCode.ok;
  },
};

/** The `registry ...` commands. */
export const registryCommands: readonly CommandSpec[] = [rebuildCommand];
