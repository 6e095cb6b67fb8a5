import {
  createBrokerClient,
  tlsCredentials,
  type BrokerClient,
  type BrokerClientOptions,
} from '@hsm-broker/client';
import { BrokerError, codeName } from '@hsm-broker/errors';
import { auditCommands } from './audit-commands.js';
import { backupCommands } from './backup-commands.js';
import { batchCommands } from './batch-commands.js';
import { chaosCommand } from './chaos/chaos-command.js';
import { renderCommandHelp, renderGroupHelp } from './command-help.js';
import {
  parseCommandLine,
  parseInteger,
  resolveCommandPath,
  UsageError,
  type OptionSpecs,
  type ParsedOptions,
} from './command-line.js';
import { ExitCode, type CliIo, type CommandSpec } from './command.js';
import { cryptoCommands } from './crypto-commands.js';
import { readInputFile } from './data-input.js';
import { envelopeCommands } from './envelope-commands.js';
import { fleetCommands } from './fleet-commands.js';
import { gamedayRunCommand } from './gameday/gameday-command.js';
import { keyCommands } from './key-commands.js';
import { acceptBothKeyIdForms, normaliseKeyId } from './key-id-argument.js';
import { pkiCommands } from './pki-commands.js';
import { registryCommands } from './registry-commands.js';
import { encodeText, writeOutput } from './output-format.js';

/** Where hsmctl connects when neither `--address` nor `HSMB_ADDRESS` says. */
export const defaultAddress = '127.0.0.1:50051';

/** Every command, in the order `hsmctl --help` lists them. */
export const commands: readonly CommandSpec[] = [
  ...keyCommands,
  ...cryptoCommands,
  ...batchCommands,
  ...envelopeCommands,
  ...fleetCommands,
  ...backupCommands,
  ...registryCommands,
  ...pkiCommands,
  chaosCommand,
  gamedayRunCommand,
  ...auditCommands,
].map(acceptBothKeyIdForms);

/** Options every command accepts, before or after the command words. */
export const globalOptions: OptionSpecs = {
  address: {
    type: 'string',
    multiple: true,
    valueName: 'HOST:PORT',
    description:
      `Broker address; repeat it or separate addresses with commas to balance over several replicas, ` +
      `or give dns:///NAME:PORT (default: $HSMB_ADDRESS, else ${defaultAddress})`,
  },
  'deadline-ms': {
    type: 'string',
    valueName: 'MS',
    description: 'Deadline of each call in milliseconds (default: 10000; 600000 for backup create and restore)',
  },
  tls: { type: 'boolean', description: 'Use TLS, verifying the broker against the system CAs' },
  'tls-ca': {
    type: 'string',
    valueName: 'FILE',
    description: 'Use TLS, verifying the broker against this CA certificate (PEM) (default: $HSMB_TLS_CA)',
  },
  'tls-cert': {
    type: 'string',
    valueName: 'FILE',
    description: 'Client certificate (PEM) for mutual TLS (default: $HSMB_TLS_CERT)',
  },
  'tls-key': {
    type: 'string',
    valueName: 'FILE',
    description: 'Private key (PEM) of the client certificate (default: $HSMB_TLS_KEY)',
  },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
};

const globalValueFlags: ReadonlySet<string> = new Set(
  Object.entries(globalOptions)
    .filter(([, spec]) => spec.type === 'string')
    .map(([name]) => `--${name}`),
);

/** Makes the broker client; tests substitute their own. */
export type ConnectBroker = (options: BrokerClientOptions) => BrokerClient;

/**
 * Runs hsmctl with the given arguments and resolves with the exit status.
 * Never rejects: every failure is reported on `io.stderr`.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  connect: ConnectBroker = createBrokerClient,
): Promise<number> {
  // `hsmctl help keys create` is `hsmctl keys create --help`.
  const args = argv[0] === 'help' ? [...argv.slice(1), '--help'] : [...argv];
  const resolved = resolveCommandPath(
    args,
    commands.map((command) => command.path),
    globalValueFlags,
  );
  const command = commands.find(
    (candidate) =>
      candidate.path.length === resolved.words.length &&
      candidate.path.every((word, index) => word === resolved.words[index]),
  );
  const helpText = (): string =>
    command === undefined
      ? renderGroupHelp(resolved.words, commands, globalOptions)
      : renderCommandHelp(command, globalOptions);

  try {
    if (command === undefined) {
      if (resolved.unknownWord !== undefined) {
        throw new UsageError(`unknown command '${[...resolved.words, resolved.unknownWord].join(' ')}'`, {
          showUsage: true,
        });
      }
      if (helpRequested(resolved.rest)) {
        await writeOutput(io.stdout, undefined, encodeText(helpText()));
        return ExitCode.ok;
      }
      if (args.length === 0) {
        await writeOutput(io.stderr, undefined, encodeText(helpText()));
        return ExitCode.usage;
      }
      throw new UsageError(
        resolved.words.length === 0 ? 'missing command' : `missing command after '${resolved.words.join(' ')}'`,
        { showUsage: true },
      );
    }
    if (helpRequested(resolved.rest)) {
      await writeOutput(io.stdout, undefined, encodeText(helpText()));
      return ExitCode.ok;
    }

    const parsed = normaliseKeyId(command, parseCommandLine(resolved.rest, { ...globalOptions, ...command.options }));
    checkPositionals(command, parsed.positionals);
    const clientOptions = await readClientOptions(parsed.options, io.env);

    let client: BrokerClient | undefined;
    try {
      return await command.run({
        options: parsed.options,
        positionals: parsed.positionals,
        io,
        client: () => (client ??= connect(clientOptions)),
      });
    } finally {
      client?.close();
    }
  } catch (error: unknown) {
    return reportFailure(error, io, command, helpText);
  }
}

function helpRequested(rest: readonly string[]): boolean {
  const end = rest.indexOf('--');
  return (end === -1 ? rest : rest.slice(0, end)).some((token) => token === '--help' || token === '-h');
}

function checkPositionals(command: CommandSpec, positionals: readonly string[]): void {
  const required = command.positionals ?? [];
  const allowed = required.length + (command.optionalPositionals?.length ?? 0);
  if (positionals.length < required.length) {
    throw new UsageError(`missing argument ${required[positionals.length] ?? ''}`, { showUsage: true });
  }
  if (positionals.length > allowed && command.repeatsLastPositional !== true) {
    throw new UsageError(`unexpected argument '${positionals[allowed] ?? ''}'`, { showUsage: true });
  }
}

/** Connection settings from the global options, checked before any command runs. */
async function readClientOptions(
  options: ParsedOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<BrokerClientOptions> {
  // Several --address options are several replicas; one may itself list
  // several, separated by commas (as $HSMB_ADDRESS may): the client splits them.
  const given = options.list('address');
  const address = given.length > 1 ? given : (given[0] ?? nonEmpty(env['HSMB_ADDRESS']) ?? defaultAddress);
  const deadline = options.string('deadline-ms');
  const caFile = options.string('tls-ca') ?? nonEmpty(env['HSMB_TLS_CA']);
  const certFile = options.string('tls-cert') ?? nonEmpty(env['HSMB_TLS_CERT']);
  const keyFile = options.string('tls-key') ?? nonEmpty(env['HSMB_TLS_KEY']);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError('--tls-cert and --tls-key must be given together');
  }
  const useTls = options.flag('tls') || caFile !== undefined || certFile !== undefined;
  const deadlineMs = deadline === undefined ? undefined : parseInteger(deadline, '--deadline-ms', { min: 1 });
  return {
    address,
    // Given explicitly, the deadline applies to every call, backups included.
    ...(deadlineMs === undefined ? {} : { deadlineMs, backupDeadlineMs: deadlineMs }),
    ...(useTls
      ? {
          credentials: tlsCredentials({
            ...(caFile === undefined ? {} : { caCert: await readInputFile(caFile, '--tls-ca') }),
            ...(certFile === undefined ? {} : { clientCert: await readInputFile(certFile, '--tls-cert') }),
            ...(keyFile === undefined ? {} : { clientKey: await readInputFile(keyFile, '--tls-key') }),
          }),
        }
      : {}),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Prints `hsmctl: <CODE>: <message>` and picks the exit status: 2 for a
 * usage error (followed by the usage or a pointer to it), 1 otherwise. The
 * broker's reason is appended when it says more than the code.
 */
async function reportFailure(
  error: unknown,
  io: CliIo,
  command: CommandSpec | undefined,
  helpText: () => string,
): Promise<number> {
  // The reader of a pipe went away (`hsmctl random ... | head -c 1`): nobody
  // is left to tell.
  if ((error as NodeJS.ErrnoException).code === 'EPIPE') return ExitCode.failure;
  try {
    if (error instanceof UsageError) {
      const pointer =
        command === undefined ? 'hsmctl --help' : `hsmctl ${command.path.join(' ')} --help`;
      const trailer = error.showUsage ? `\n${helpText()}` : `Run '${pointer}' for usage.\n`;
      await writeOutput(io.stderr, undefined, encodeText(`hsmctl: INVALID_ARGUMENT: ${error.message}\n${trailer}`));
      return ExitCode.usage;
    }
    const failure = BrokerError.from(error);
    const name = codeName(failure.code);
    const reason = failure.reason !== name ? ` [${failure.reason}]` : '';
    await writeOutput(io.stderr, undefined, encodeText(`hsmctl: ${name}: ${failure.message}${reason}`));
  } catch {
    // stderr itself failed; the exit status is all that is left.
  }
  return error instanceof UsageError ? ExitCode.usage : ExitCode.failure;
}
