import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BrokerError, Code } from '@hsm-broker/errors';
import { decodeBase64, UsageError, type OptionSpecs, type ParsedOptions } from './command-line.js';
import type { CliIo } from './command.js';

/** The options every command that consumes data accepts. */
export const dataInputOptions: OptionSpecs = {
  in: {
    type: 'string',
    valueName: 'FILE',
    description: "Read the input from FILE ('-' for stdin, the default)",
  },
  data: { type: 'string', valueName: 'TEXT', description: 'Use TEXT, as UTF-8, as the input' },
  'data-base64': { type: 'string', valueName: 'B64', description: 'Use the base64-decoded B64 as the input' },
};

/**
 * The command's input: `--data`, `--data-base64`, `--in FILE`, or stdin.
 * Giving more than one is a usage error rather than a silent choice.
 */
export async function readDataInput(options: ParsedOptions, io: CliIo): Promise<Buffer> {
  const given = ['in', 'data', 'data-base64'].filter((name) => options.has(name));
  if (given.length > 1) {
    throw new UsageError(`give only one of ${given.map((name) => `--${name}`).join(', ')}`);
  }
  const text = options.string('data');
  if (text !== undefined) return Buffer.from(text, 'utf8');
  const base64 = options.string('data-base64');
  if (base64 !== undefined) return decodeBase64(base64, '--data-base64');
  const path = options.string('in');
  if (path !== undefined && path !== '-') return readInputFile(path, '--in');
  // Waiting on a terminal for input nobody meant to type looks like a hang.
  if (path === undefined && io.stdin.isTTY === true) {
    throw new UsageError('no input: give --in FILE, --data TEXT or --data-base64 B64, or pipe data to stdin');
  }
  return readStream(io.stdin);
}

/**
 * Reads an argument that is either a file name or base64 bytes
 * (`--signature sig.der` or `--signature MEUCIQ...`). An existing file wins.
 */
export async function readFileOrBase64(value: string, flag: string): Promise<Buffer> {
  const isFile = await stat(value).then(
    (info) => info.isFile(),
    () => false,
  );
  if (isFile) return readInputFile(value, flag);
  try {
    return decodeBase64(value, flag);
  } catch {
    throw new UsageError(`${flag}: '${value}' is neither a readable file nor valid base64`);
  }
}

/** Reads a whole file, naming the option when it cannot. */
export async function readInputFile(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error: unknown) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new BrokerError(Code.INVALID_ARGUMENT, `${flag}: cannot read '${path}' (${reason})`, {
      reason: 'INPUT_UNREADABLE',
      cause: error,
    });
  }
}

/** Collects a stream to its end. */
export async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}
