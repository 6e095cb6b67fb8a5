import { KeySpec, KeyState, KeyUsage, type KeyMetadata } from '@hsm-broker/client';
import { enumName } from './enum-names.js';
import { printable, renderTable } from './text-table.js';

/** Renders a page of keys as a table, one key per row. */
export function renderKeyList(keys: readonly KeyMetadata[]): string {
  if (keys.length === 0) return 'No keys.\n';
  return renderTable(
    [
      { header: 'KEY ID' },
      { header: 'SPEC' },
      { header: 'USAGE' },
      { header: 'STATE' },
      { header: 'PRIMARY', align: 'right' },
      { header: 'CREATED' },
      { header: 'DESCRIPTION' },
    ],
    keys.map((key) => [
      key.keyId,
      enumName(KeySpec, key.keySpec),
      enumName(KeyUsage, key.keyUsage),
      enumName(KeyState, key.keyState),
      String(key.primaryVersion),
      formatTime(key.createdAt),
      key.description,
    ]),
  );
}

/** Renders one key's metadata as aligned `field: value` lines. */
export function renderKeyMetadata(key: KeyMetadata): string {
  const labels = Object.entries(key.labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`);
  const fields: [string, string][] = [
    ['Key ID', key.keyId],
    ['Spec', enumName(KeySpec, key.keySpec)],
    ['Usage', enumName(KeyUsage, key.keyUsage)],
    ['State', enumName(KeyState, key.keyState)],
    ['Primary version', String(key.primaryVersion)],
    [
      'Versions',
      key.versions.map((version) => `${String(version.version)} (${formatTime(version.createdAt)})`).join(', '),
    ],
    ['Created', formatTime(key.createdAt)],
  ];
  if (key.deletionTime !== undefined) fields.push(['Deletion time', formatTime(key.deletionTime)]);
  fields.push(
    ['Description', key.description],
    ['Labels', labels.join(', ')],
    ['Replicas', key.replicas.join(', ')],
  );
  const width = Math.max(...fields.map(([name]) => name.length)) + 1;
  return fields
    .map(([name, value]) => `${`${name}:`.padEnd(width)}  ${printable(value === '' ? '-' : value)}`)
    .join('\n')
    .concat('\n');
}

/** A timestamp to the second, in UTC: `2026-11-30T04:54:00Z`. */
export function formatTime(time: Date | undefined): string {
  if (time === undefined || Number.isNaN(time.getTime())) return '-';
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
