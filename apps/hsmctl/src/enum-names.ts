import { UsageError } from './command-line.js';

/** A TypeScript numeric enum object as ts-proto generates it (with the prefix removed). */
export type ProtoEnum = Readonly<Record<string, string | number>>;

// Values that exist in every generated enum but are never a valid choice.
const hidden = new Set(['UNSPECIFIED', 'UNRECOGNIZED']);

/** The names a user may type for an enum, in declaration order: `AES_256`, `HMAC_256`, ... */
export function enumNames(enumObject: ProtoEnum): string[] {
  return Object.entries(enumObject)
    .filter(([name, value]) => typeof value === 'number' && !hidden.has(name))
    .map(([name]) => name);
}

/**
 * The short name of an enum value for display. A value this build does not
 * know (sent by a newer broker) shows as its number rather than vanishing.
 */
export function enumName(enumObject: ProtoEnum, value: number): string {
  const name = enumObject[value];
  return typeof name === 'string' && name !== 'UNRECOGNIZED' ? name : String(value);
}

/**
 * Reads an enum value by its short name. Case does not matter and `-` may
 * stand for `_`, so `aes-256` and `AES_256` are the same; anything else is a
 * usage error that lists the allowed names.
 */
export function parseEnumValue(enumObject: ProtoEnum, input: string, flag: string): number {
  const wanted = input.trim().toUpperCase().replaceAll('-', '_');
  const allowed = enumNames(enumObject);
  if (allowed.includes(wanted)) {
    const value = enumObject[wanted];
    if (typeof value === 'number') return value;
  }
  throw new UsageError(`${flag}: unknown value '${input}'; allowed: ${allowed.join(', ')}`);
}
