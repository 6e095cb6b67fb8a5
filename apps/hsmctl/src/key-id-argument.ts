import { ParsedOptions, UsageError, type OptionSpec } from './command-line.js';
import type { CommandSpec } from './command.js';

/** The positional name that means "a key id" in a command's synopsis. */
const keyPositional = 'KEY';

const keyIdFlag: OptionSpec = { type: 'string', valueName: 'KEY', description: 'Id of the key (the same as the KEY argument)' };

function takesKeyPositional(command: CommandSpec): boolean {
  return command.positionals?.[0] === keyPositional;
}

/**
 * Every command that works on one key takes its id both ways, `--key-id KEY`
 * and a positional `KEY`, so that `keys describe --key-id demo/sign` and
 * `sign demo/sign …` work as a newcomer would first type them. Commands
 * whose KEY is positional gain a `--key-id` option; commands with
 * `--key-id` (and no other positionals) accept the id as their argument.
 */
export function acceptBothKeyIdForms(command: CommandSpec): CommandSpec {
  if (takesKeyPositional(command) && command.options['key-id'] === undefined) {
    return { ...command, synopsis: `${command.synopsis} (or --key-id KEY)`, options: { 'key-id': keyIdFlag, ...command.options } };
  }
  if (command.options['key-id'] !== undefined && (command.positionals ?? []).length === 0 && (command.optionalPositionals ?? []).length === 0) {
    return { ...command, synopsis: `${command.synopsis} (KEY may also be given as the first argument)`, optionalPositionals: [keyPositional] };
  }
  return command;
}

/**
 * Brings a parsed command line to the one form the command reads: the id
 * in the positional for KEY commands, in `--key-id` for the others. The id
 * given both ways with different values is refused, naming both.
 */
export function normaliseKeyId(
  command: CommandSpec,
  parsed: { options: ParsedOptions; positionals: string[] },
): { options: ParsedOptions; positionals: string[] } {
  const flag = parsed.options.string('key-id');
  if (takesKeyPositional(command)) {
    if (flag === undefined) return parsed;
    const [positional, ...rest] = parsed.positionals;
    if (positional !== undefined && positional !== flag) {
      throw new UsageError(`the key is given twice, as '${positional}' and as --key-id '${flag}'; give it once`);
    }
    return { options: parsed.options, positionals: [flag, ...rest] };
  }
  if (command.options['key-id'] === undefined || command.optionalPositionals?.[0] !== keyPositional) return parsed;
  const [positional, ...rest] = parsed.positionals;
  if (positional === undefined) return parsed;
  if (flag !== undefined && flag !== positional) {
    throw new UsageError(`the key is given twice, as '${positional}' and as --key-id '${flag}'; give it once`);
  }
  return { options: parsed.options.with('key-id', positional), positionals: rest };
}
