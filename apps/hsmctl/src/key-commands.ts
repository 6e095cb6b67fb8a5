import {
  KeyMetadata,
  KeySpec,
  KeyUsage,
  type BrokerClient,
} from '@hsm-broker/client';
import { BrokerError, Code } from '@hsm-broker/errors';
import { parseKeyValueList, UsageError, type OptionSpec, type ParsedOptions } from './command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from './command.js';
import { enumNames, parseEnumValue } from './enum-names.js';
import { renderKeyList, renderKeyMetadata } from './key-view.js';
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

/** Bounds of an automatic rotation period, in days; 0 means none. */
const rotationPeriodDays = { min: 90, max: 2560 } as const;

function rotationPeriodOption(description: string): OptionSpec {
  return { type: 'string', valueName: 'N', description };
}

/**
 * `--rotation-period-days`: 0, or 90 to 2560. Checked here rather than left
 * to the broker, so that `keys create` with a bad period creates nothing.
 */
function readRotationPeriod(options: ParsedOptions): number | undefined {
  const input = options.string('rotation-period-days');
  if (input === undefined) return undefined;
  const days = /^\s*\d+\s*$/.test(input) ? Number(input.trim()) : Number.NaN;
  if (days !== 0 && !(days >= rotationPeriodDays.min && days <= rotationPeriodDays.max)) {
    throw new UsageError(
      `--rotation-period-days: expected 0 or an integer from ${String(rotationPeriodDays.min)} to ` +
        `${String(rotationPeriodDays.max)}, got '${input}'`,
    );
  }
  return days;
}

function reportFormat(context: CommandContext): 'text' | 'json' {
  return resolveOutputTarget(context.options, reportFormats, 'text', false).format === 'json' ? 'json' : 'text';
}

async function printKey(context: CommandContext, format: 'text' | 'json', key: KeyMetadata | undefined): Promise<number> {
  if (key === undefined) throw new BrokerError(Code.INTERNAL, 'the broker answered without key metadata');
  const bytes = format === 'json' ? encodeJson(KeyMetadata.toJSON(key)) : encodeText(renderKeyMetadata(key));
  await writeOutput(context.io.stdout, undefined, bytes);
  return ExitCode.ok;
}

/** A command that takes one KEY argument, calls one RPC and prints the key it returns. */
function singleKeyCommand(
  word: string,
  summary: string,
  call: (client: BrokerClient, keyId: string, options: ParsedOptions) => Promise<{ keyMetadata?: KeyMetadata }>,
  extra: Pick<CommandSpec, 'options' | 'synopsis' | 'description'> = { options: {}, synopsis: 'KEY' },
): CommandSpec {
  return {
    path: ['keys', word],
    synopsis: extra.synopsis,
    summary,
    ...(extra.description === undefined ? {} : { description: extra.description }),
    positionals: ['KEY'],
    options: { ...extra.options, ...reportOutput },
    async run(context) {
      const format = reportFormat(context);
      const keyId = context.positionals[0] ?? '';
      const response = await call(context.client(), keyId, context.options);
      return printKey(context, format, response.keyMetadata);
    },
  };
}

const createCommand: CommandSpec = {
  path: ['keys', 'create'],
  synopsis:
    '--spec SPEC --usage USAGE [--key-id ID] [--description TEXT] [--label K=V ...] [--rotation-period-days N]',
  summary: 'Create a key inside the fleet',
  description:
    'Returns once the key is durable (present on enough appliances in enough zones). ' +
    'Not retried automatically: if the call fails, check with `hsmctl keys describe` before trying again.',
  options: {
    spec: { type: 'string', valueName: 'SPEC', description: `Key spec (required): ${enumNames(KeySpec).join(', ')}` },
    usage: { type: 'string', valueName: 'USAGE', description: `Key usage (required): ${enumNames(KeyUsage).join(', ')}` },
    'key-id': {
      type: 'string',
      valueName: 'ID',
      description: 'Id for the key, 1 to 128 of [A-Za-z0-9/_.-] (default: chosen by the broker)',
    },
    description: { type: 'string', valueName: 'TEXT', description: 'Free-text description' },
    label: { type: 'string', multiple: true, valueName: 'K=V', description: 'Label to attach' },
    'rotation-period-days': rotationPeriodOption(
      'Rotate automatically every N days, 90 to 2560; 0 for never (default: 0)',
    ),
    ...reportOutput,
  },
  async run(context) {
    const { options } = context;
    const keySpec = parseEnumValue(KeySpec, options.requiredString('spec'), '--spec');
    const keyUsage = parseEnumValue(KeyUsage, options.requiredString('usage'), '--usage');
    const labels = parseKeyValueList(options.list('label'), '--label');
    const rotationPeriod = readRotationPeriod(options);
    const format = reportFormat(context);
    const response = await context.client().createKey({
      keyId: options.string('key-id') ?? '',
      keySpec,
      keyUsage,
      description: options.string('description') ?? '',
      labels,
      ...(rotationPeriod === undefined ? {} : { rotationPeriodDays: rotationPeriod }),
    });
    return printKey(context, format, response.keyMetadata);
  },
};

const listCommand: CommandSpec = {
  path: ['keys', 'list'],
  synopsis: '[--page-size N] [--page-token TOKEN | --all]',
  summary: 'List keys',
  description: 'Prints one page (the broker default is 100 keys); --all follows every page.',
  options: {
    'page-size': { type: 'string', valueName: 'N', description: 'Keys per page, 1 to 1000' },
    'page-token': { type: 'string', valueName: 'TOKEN', description: 'Continue from a previous page' },
    all: { type: 'boolean', description: 'List every key, following all pages' },
    ...reportOutput,
  },
  async run(context) {
    const { options } = context;
    const pageSize = options.integer('page-size', { min: 1, max: 1000 }) ?? 0;
    const format = reportFormat(context);
    const client = context.client();
    let keys: KeyMetadata[];
    let nextPageToken = '';
    if (options.flag('all')) {
      keys = [];
      for await (const key of client.listAllKeys({ pageSize })) keys.push(key);
    } else {
      const page = await client.listKeys({ pageSize, pageToken: options.string('page-token') ?? '' });
      keys = page.keys;
      nextPageToken = page.nextPageToken;
    }
    if (format === 'json') {
      await writeOutput(
        context.io.stdout,
        undefined,
        encodeJson({
          keys: keys.map((key) => KeyMetadata.toJSON(key)),
          ...(nextPageToken === '' ? {} : { nextPageToken }),
        }),
      );
      return ExitCode.ok;
    }
    await writeOutput(context.io.stdout, undefined, encodeText(renderKeyList(keys)));
    if (nextPageToken !== '') {
      // On stderr, so that the table on stdout stays clean for pipes.
      await writeOutput(
        context.io.stderr,
        undefined,
        encodeText(`More keys: run again with --page-token ${nextPageToken}, or use --all.`),
      );
    }
    return ExitCode.ok;
  },
};

const updateCommand: CommandSpec = {
  path: ['keys', 'update'],
  synopsis: 'KEY [--min-decryption-version N] [--rotation-period-days N]',
  summary: "Change a key's minimum decryption version or rotation period",
  description:
    'Versions below --min-decryption-version are retired: they no longer decrypt or verify ' +
    '(FAILED_PRECONDITION, KEY_VERSION_RETIRED), but their material is kept, so lowering it again ' +
    'makes them usable again. It can be 1 to the primary version. --rotation-period-days 0 stops ' +
    'automatic rotation. Give at least one of the two; the other is left as it is.',
  positionals: ['KEY'],
  options: {
    'min-decryption-version': {
      type: 'string',
      valueName: 'N',
      description: 'Oldest version that may still decrypt and verify, 1 to the primary version',
    },
    'rotation-period-days': rotationPeriodOption('Rotate automatically every N days, 90 to 2560; 0 for never'),
    ...reportOutput,
  },
  async run(context) {
    const { options } = context;
    const minDecryptionVersion = options.integer('min-decryption-version', { min: 1, max: maxUint32 });
    const rotationPeriod = readRotationPeriod(options);
    if (minDecryptionVersion === undefined && rotationPeriod === undefined) {
      throw new UsageError('nothing to change: give --min-decryption-version, --rotation-period-days or both');
    }
    const format = reportFormat(context);
    const response = await context.client().updateKeySettings({
      keyId: context.positionals[0] ?? '',
      // Absent fields stay absent on the wire: the broker leaves those settings alone.
      ...(minDecryptionVersion === undefined ? {} : { minDecryptionVersion }),
      ...(rotationPeriod === undefined ? {} : { rotationPeriodDays: rotationPeriod }),
    });
    return printKey(context, format, response.keyMetadata);
  },
};

/** The `keys ...` commands. */
export const keyCommands: readonly CommandSpec[] = [
  createCommand,
  listCommand,
  singleKeyCommand('describe', "Show a key's metadata", (client, keyId) => client.describeKey({ keyId })),
  singleKeyCommand(
    'rotate',
    'Add a new primary version to a key',
    (client, keyId) => client.rotateKey({ keyId }),
  ),
  updateCommand,
  singleKeyCommand('disable', 'Make a key unusable until it is enabled again', (client, keyId) =>
    client.disableKey({ keyId }),
  ),
  singleKeyCommand('enable', 'Make a disabled key usable again', (client, keyId) => client.enableKey({ keyId })),
  singleKeyCommand(
    'schedule-deletion',
    "Schedule a key's destruction after 7 to 30 days",
    (client, keyId, options) =>
      client.scheduleKeyDeletion({
        keyId,
        pendingWindowDays: options.integer('days', { min: 7, max: 30 }) ?? 0,
      }),
    {
      synopsis: 'KEY [--days N]',
      description:
        'The key is unusable from now on. Until the waiting period ends, ' +
        '`hsmctl keys cancel-deletion KEY` keeps it (as DISABLED).',
      options: {
        days: { type: 'string', valueName: 'N', description: 'Waiting period in days, 7 to 30 (default: 30)' },
      },
    },
  ),
  singleKeyCommand(
    'cancel-deletion',
    'Stop a scheduled deletion; the key becomes DISABLED',
    (client, keyId) => client.cancelKeyDeletion({ keyId }),
  ),
];
