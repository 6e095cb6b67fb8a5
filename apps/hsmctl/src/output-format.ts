import { writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { BrokerError, Code } from '@hsm-broker/errors';
import { UsageError, type OptionSpec, type OptionSpecs, type ParsedOptions } from './command-line.js';

/**
 * How a command prints its result.
 * - `text`: for people (tables, `valid`/`invalid`)
 * - `raw`: the bytes themselves (DER for public keys)
 * - `base64`, `hex`: the bytes encoded, one line
 * - `json`: the response in proto3 JSON form (bytes as base64)
 * - `pem`: a public key in PEM
 */
export type OutputFormat = 'text' | 'raw' | 'base64' | 'hex' | 'json' | 'pem';

/** Formats for a command whose result is bytes. */
export const binaryFormats: readonly OutputFormat[] = ['raw', 'base64', 'hex', 'json'];
/** Formats for a command whose result is a report. */
export const reportFormats: readonly OutputFormat[] = ['text', 'json'];

/** The `--output` option, listing the formats a command accepts. */
export function outputOption(formats: readonly OutputFormat[], defaultText: string): OptionSpec {
  return {
    type: 'string',
    valueName: 'FORMAT',
    description: `Output format: ${formats.join(', ')} (default: ${defaultText})`,
  };
}

/** The `--out` option for commands whose result can go to a file. */
export const outFileOption: OptionSpecs = {
  out: {
    type: 'string',
    valueName: 'FILE',
    description: 'Write the result to FILE (created with mode 0600) instead of stdout',
  },
};

/** Checks `--output` against the formats a command supports. */
export function parseOutputFormat(
  value: string | undefined,
  allowed: readonly OutputFormat[],
  fallback: OutputFormat,
): OutputFormat {
  if (value === undefined) return fallback;
  const wanted = value.trim().toLowerCase();
  const match = allowed.find((format) => format === wanted);
  if (match === undefined) {
    throw new UsageError(`--output: unknown format '${value}'; allowed: ${allowed.join(', ')}`);
  }
  return match;
}

/**
 * The default format for bytes: base64 when a person is watching a terminal
 * (raw ciphertext would garble it), raw when piped or written to a file, so
 * that `hsmctl encrypt ... | hsmctl decrypt` round-trips.
 */
export function defaultBinaryFormat(target: { outFile: string | undefined; stdoutIsTTY: boolean }): OutputFormat {
  return target.outFile === undefined && target.stdoutIsTTY ? 'base64' : 'raw';
}

/** Encodes bytes as `raw`, `base64` or `hex`; the text forms end with a newline. */
export function encodeBytes(bytes: Uint8Array, format: 'raw' | 'base64' | 'hex'): Buffer {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  switch (format) {
    case 'raw':
      return buffer;
    case 'base64':
      return Buffer.from(`${buffer.toString('base64')}\n`, 'ascii');
    case 'hex':
      return Buffer.from(`${buffer.toString('hex')}\n`, 'ascii');
  }
}

/** Pretty-printed JSON with a trailing newline. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

/** Text with exactly one trailing newline. */
export function encodeText(text: string): Buffer {
  return Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8');
}

/**
 * Writes a result to `outFile`, or to stdout when there is none. Files are
 * created readable by the owner only: results include plaintext and data keys.
 */
export async function writeOutput(stdout: Writable, outFile: string | undefined, bytes: Uint8Array): Promise<void> {
  if (outFile !== undefined && outFile !== '-') {
    try {
      await writeFile(outFile, bytes, { mode: 0o600 });
    } catch (error: unknown) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new BrokerError(Code.INVALID_ARGUMENT, `--out: cannot write '${outFile}' (${reason})`, {
        reason: 'OUTPUT_UNWRITABLE',
        cause: error,
      });
    }
    return;
  }
  await new Promise<void>((resolve, reject) => {
    stdout.write(bytes, (error) => (error == null ? resolve() : reject(error)));
  });
}

/** Where and how a command's result is written, settled before any call is made. */
export interface OutputTarget {
  format: OutputFormat;
  /** Undefined for stdout. */
  outFile: string | undefined;
}

/**
 * Reads `--output` and `--out`. `fallback: 'bytes'` picks
 * {@link defaultBinaryFormat}. Commands call this before contacting the
 * broker, so a typo in `--output` never costs a key creation.
 */
export function resolveOutputTarget(
  options: ParsedOptions,
  allowed: readonly OutputFormat[],
  fallback: OutputFormat | 'bytes',
  stdoutIsTTY: boolean,
): OutputTarget {
  const outFile = options.string('out');
  const format = parseOutputFormat(
    options.string('output'),
    allowed,
    fallback === 'bytes' ? defaultBinaryFormat({ outFile, stdoutIsTTY }) : fallback,
  );
  return { format, outFile };
}

/**
 * Encodes a byte result in the target format; `json` renders the whole
 * response instead, through `toJson`.
 */
export function encodeByteResult(format: OutputFormat, bytes: Uint8Array, toJson: () => unknown): Buffer {
  switch (format) {
    case 'raw':
    case 'base64':
    case 'hex':
      return encodeBytes(bytes, format);
    case 'json':
      return encodeJson(toJson());
    case 'text':
    case 'pem':
      // No byte-producing command offers these; reaching here is a bug.
      throw new BrokerError(Code.INTERNAL, `output format '${format}' does not apply to bytes`);
  }
}
