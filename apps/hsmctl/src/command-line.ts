import { parseArgs } from 'node:util';

/** One command-line option, as `node:util` parseArgs needs it, plus its help text. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** May be given more than once (`--label a=1 --label b=2`). */
  multiple?: boolean;
  short?: string;
  /** Placeholder shown in help, e.g. `KEY`. */
  valueName?: string;
  description: string;
}

/** The named options of a command, keyed by long name without dashes. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/**
 * A mistake in the command line itself: exit status 2, not 1, and no broker
 * was called.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /**
   * Whether the command's usage should follow the message: yes when the shape
   * of the command line is wrong (unknown command or option), no when a single
   * value is, where the message already says what to type.
   */
  readonly showUsage: boolean;

  constructor(message: string, options: { showUsage?: boolean } = {}) {
    super(message);
    this.showUsage = options.showUsage ?? false;
  }
}

/** How the command words were found among the arguments. */
export interface CommandPath {
  /** The command words matched so far, e.g. `['keys', 'create']`. */
  words: string[];
  /** Every other argument, in order, for parseArgs. */
  rest: string[];
  /** The first word that matched no command, if any. */
  unknownWord?: string;
}

/**
 * Finds the command words (`keys create`) among the arguments, so that global
 * options may come before, between or after them. Only the options in
 * `globalValueOptions` may precede the command; their values are skipped so
 * that `--address keys` is not taken for a command.
 */
export function resolveCommandPath(
  argv: readonly string[],
  commandPaths: readonly (readonly string[])[],
  globalValueOptions: ReadonlySet<string>,
): CommandPath {
  const words: string[] = [];
  const rest: string[] = [];
  let unknownWord: string | undefined;
  let candidates = commandPaths;
  let afterDoubleDash = false;

  for (let index = 0; index < argv.length; index += 1) {
    const token = argv[index] ?? '';
    if (afterDoubleDash) {
      rest.push(token);
      continue;
    }
    if (token === '--') {
      afterDoubleDash = true;
      rest.push(token);
      continue;
    }
    if (token.startsWith('-') && token !== '-') {
      rest.push(token);
      const next = argv[index + 1];
      if (globalValueOptions.has(token) && next !== undefined) {
        rest.push(next);
        index += 1;
      }
      continue;
    }
    const atLeaf = candidates.some((path) => path.length === words.length);
    const next = candidates.filter((path) => path[words.length] === token);
    if (!atLeaf && next.length > 0) {
      words.push(token);
      candidates = next;
      continue;
    }
    if (!atLeaf && unknownWord === undefined) unknownWord = token;
    rest.push(token);
  }
  return unknownWord === undefined ? { words, rest } : { words, rest, unknownWord };
}

type OptionValue = string | boolean | (string | boolean)[] | undefined;

/** Parsed option values with typed, validating accessors. */
export class ParsedOptions {
  readonly #values: Readonly<Record<string, OptionValue>>;

  constructor(values: Readonly<Record<string, OptionValue>>) {
    this.#values = values;
  }

  /** These options with one more string value, as if it had been given on the command line. */
  with(name: string, value: string): ParsedOptions {
    return new ParsedOptions({ ...this.#values, [name]: value });
  }

  /** Whether the option was given at all. */
  has(name: string): boolean {
    return this.#values[name] !== undefined;
  }

  /** A string option's value; the last one wins if it was repeated. */
  string(name: string): string | undefined {
    const value = this.#values[name];
    if (Array.isArray(value)) {
      const last = value.at(-1);
      return typeof last === 'string' ? last : undefined;
    }
    return typeof value === 'string' ? value : undefined;
  }

  /** A string option that must be present and non-empty. */
  requiredString(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === '') {
      throw new UsageError(`missing required option --${name}`);
    }
    return value;
  }

  /** Every value of a repeatable option, in the order given. */
  list(name: string): string[] {
    const value = this.#values[name];
    if (value === undefined) return [];
    const values = Array.isArray(value) ? value : [value];
    return values.filter((entry): entry is string => typeof entry === 'string');
  }

  /** A boolean option. */
  flag(name: string): boolean {
    return this.#values[name] === true;
  }

  /** An integer option within bounds that must be present. */
  requiredInteger(name: string, bounds: { min: number; max?: number }): number {
    return parseInteger(this.requiredString(name), `--${name}`, bounds);
  }

  /** An integer option within bounds, or undefined when absent. */
  integer(name: string, bounds: { min: number; max?: number }): number | undefined {
    const value = this.string(name);
    return value === undefined ? undefined : parseInteger(value, `--${name}`, bounds);
  }

  /** A decimal option within bounds (`0.25`), or undefined when absent. */
  decimal(name: string, bounds: { min: number; max: number }): number | undefined {
    const value = this.string(name);
    return value === undefined ? undefined : parseDecimal(value, `--${name}`, bounds);
  }
}

/** Parses the arguments left after the command words, translating parseArgs' errors. */
export function parseCommandLine(
  args: readonly string[],
  options: OptionSpecs,
): { options: ParsedOptions; positionals: string[] } {
  const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries(options)) {
    config[name] = {
      type: spec.type,
      ...(spec.multiple === true ? { multiple: true } : {}),
      ...(spec.short === undefined ? {} : { short: spec.short }),
    };
  }
  try {
    const parsed = parseArgs({
      args: [...args],
      options: config,
      allowPositionals: true,
      strict: true,
    });
    return { options: new ParsedOptions(parsed.values), positionals: parsed.positionals };
  } catch (error: unknown) {
    throw new UsageError(describeParseError(error), { showUsage: true });
  }
}

// parseArgs' messages are written for developers ("To specify a positional
// argument starting with a '-', place it at the end ..."); an operator needs
// the option's name and what is wrong with it.
function describeParseError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${option}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (message.includes('does not take an argument')) return `option '${option}' takes no value`;
      if (message.includes('ambiguous')) {
        return `option '${option}' needs a value; to pass one that starts with '-', write ${option}=VALUE`;
      }
      return `option '${option}' needs a value`;
    default:
      return message.split('\n')[0] ?? message;
  }
}

/**
 * Reads repeated `key=value` arguments (`--context tenant=acme`) into a map.
 * The first `=` separates key from value, so values may contain `=`; keys may
 * not be empty or repeated, because a silently dropped entry in an
 * encryption context would make the data undecryptable later.
 */
export function parseKeyValueList(entries: readonly string[], flag: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of entries) {
    const separator = entry.indexOf('=');
    if (separator === -1) {
      throw new UsageError(`${flag}: expected KEY=VALUE, got '${entry}'`);
    }
    const key = entry.slice(0, separator);
    const value = entry.slice(separator + 1);
    if (key === '') throw new UsageError(`${flag}: empty key in '${entry}'`);
    // A plain object would turn this key into a prototype change, not an entry.
    if (key === '__proto__') throw new UsageError(`${flag}: '__proto__' cannot be used as a key`);
    if (Object.hasOwn(result, key)) throw new UsageError(`${flag}: key '${key}' given twice`);
    result[key] = value;
  }
  return result;
}

/** Reads a decimal integer within bounds, naming the option if it is not one. */
export function parseInteger(input: string, flag: string, bounds: { min: number; max?: number }): number {
  const range =
    bounds.max === undefined
      ? `an integer >= ${String(bounds.min)}`
      : `an integer from ${String(bounds.min)} to ${String(bounds.max)}`;
  if (!/^-?\d+$/.test(input.trim())) {
    throw new UsageError(`${flag}: expected ${range}, got '${input}'`);
  }
  const value = Number(input.trim());
  if (!Number.isSafeInteger(value) || value < bounds.min || (bounds.max !== undefined && value > bounds.max)) {
    throw new UsageError(`${flag}: expected ${range}, got '${input}'`);
  }
  return value;
}

/**
 * Reads a plain decimal number within bounds: `1`, `0.25`, `.5`. Exponents,
 * hex, `Infinity` and `NaN`, which `Number()` would also accept, are refused,
 * like anything else that is not written the way the help shows.
 */
export function parseDecimal(input: string, flag: string, bounds: { min: number; max: number }): number {
  const trimmed = input.trim();
  const range = `a number from ${String(bounds.min)} to ${String(bounds.max)}`;
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(trimmed)) {
    throw new UsageError(`${flag}: expected ${range}, got '${input}'`);
  }
  const value = Number(trimmed);
  if (value < bounds.min || value > bounds.max) {
    throw new UsageError(`${flag}: expected ${range}, got '${input}'`);
  }
  return value;
}

/**
 * Decodes standard or URL-safe base64, with or without padding. Unlike
 * `Buffer.from(s, 'base64')`, which skips characters it does not know, any
 * stray character is an error: a typo must not turn into different bytes.
 */
export function decodeBase64(input: string, flag: string): Buffer {
  const compact = input.replace(/\s+/g, '');
  const standard = /^[A-Za-z0-9+/]*={0,2}$/.test(compact);
  const urlSafe = /^[A-Za-z0-9_-]*={0,2}$/.test(compact);
  if ((!standard && !urlSafe) || compact.replace(/=+$/, '').length % 4 === 1) {
    throw new UsageError(`${flag}: not valid base64`);
  }
  return Buffer.from(compact, standard ? 'base64' : 'base64url');
}
