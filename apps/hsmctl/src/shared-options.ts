import { parseKeyValueList, type OptionSpec, type ParsedOptions } from './command-line.js';

/** The largest value of a proto `uint32` field. */
export const maxUint32 = 0xffff_ffff;

/** `--key-id KEY`: the key an operation uses. */
export const keyIdOption: OptionSpec = {
  type: 'string',
  valueName: 'KEY',
  description: 'Id of the key to use (required)',
};

/** `--key-version N`: a specific version of the key; the primary one when absent. */
export const keyVersionOption: OptionSpec = {
  type: 'string',
  valueName: 'N',
  description: 'Key version to use (default: the primary version)',
};

/** A repeatable `--context k=v` option. */
export function contextOption(description = 'Encryption context entry; give the same entries to decrypt'): OptionSpec {
  return { type: 'string', multiple: true, valueName: 'K=V', description };
}

/** The encryption context given by a repeatable `k=v` option. */
export function readContext(options: ParsedOptions, name = 'context'): Record<string, string> {
  return parseKeyValueList(options.list(name), `--${name}`);
}

/** `--key-version` as the request wants it: 0 selects the primary version. */
export function readKeyVersion(options: ParsedOptions): number {
  return options.integer('key-version', { min: 1, max: maxUint32 }) ?? 0;
}
