import type { Readable, Writable } from 'node:stream';
import type { BrokerClient } from '@hsm-broker/client';
import type { OptionSpecs, ParsedOptions } from './command-line.js';

/** The process streams and environment a command runs with; tests pass their own. */
export interface CliIo {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  /** Progress is drawn in place when this is a terminal, and logged line by line otherwise. */
  stderr: Writable & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
}

/** What a running command can reach. */
export interface CommandContext {
  readonly options: ParsedOptions;
  readonly positionals: readonly string[];
  readonly io: CliIo;
  /** The broker client, connected on first use and closed after the command. */
  client(): BrokerClient;
}

/**
 * Exit statuses. A failed verification is neither a usage mistake nor a
 * failed call, so scripts can tell the three apart.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  verificationFailed: 3,
} as const;

/** One leaf command such as `keys create`. */
export interface CommandSpec {
  /** The words that select it, e.g. `['keys', 'create']`. */
  path: readonly string[];
  /** Arguments after the command words, e.g. `KEY [--days N]`. */
  synopsis: string;
  /** One line for the command list. */
  summary: string;
  /** Further paragraphs for `--help`. */
  description?: string;
  /** Names of required positional arguments, in order. */
  positionals?: readonly string[];
  /** Names of optional positional arguments, which follow the required ones. */
  optionalPositionals?: readonly string[];
  /** The last required positional may be given more than once (`FILE...`). */
  repeatsLastPositional?: boolean;
  options: OptionSpecs;
  /** Resolves with the exit status; failures are thrown. */
  run(context: CommandContext): Promise<number>;
}
