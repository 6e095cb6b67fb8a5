import { KeySpec, KeyState, KeyUsage, type KeyMetadata, type KeyVersion } from '@hsm-broker/client';
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

/**
 * Renders one key's metadata as aligned `field: value` lines, then its
 * versions as {@link renderKeyVersions} shows them.
 */
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
    // A broker that predates retiring versions sends 0: nothing is retired.
    ['Min decryption version', key.minDecryptionVersion === 0 ? '' : String(key.minDecryptionVersion)],
    ['Rotation period', key.rotationPeriodDays === 0 ? 'none (manual only)' : `${String(key.rotationPeriodDays)} days`],
  ];
  if (key.rotationPeriodDays !== 0) fields.push(['Next rotation', formatTime(key.nextRotationTime)]);
  fields.push(['Created', formatTime(key.createdAt)]);
  if (key.deletionTime !== undefined) fields.push(['Deletion time', formatTime(key.deletionTime)]);
  fields.push(
    ['Description', key.description],
    ['Labels', labels.join(', ')],
    ['Replicas', key.replicas.join(', ')],
  );
  const width = Math.max(...fields.map(([name]) => name.length)) + 1;
  const text = fields
    .map(([name, value]) => `${`${name}:`.padEnd(width)}  ${printable(value === '' ? '-' : value)}`)
    .join('\n')
    .concat('\n');
  return key.versions.length === 0 ? text : `${text}\n${renderKeyVersions(key)}`;
}

/**
 * One row per key version: when it was made, whether it is the primary or
 * retired (below the minimum decryption version), the appliances holding it,
 * the enrolled appliances that should but do not (repair pending), and when
 * its copies were last verified. That is the oldest of its holders'
 * verifications, so one stale copy is not hidden behind fresh ones.
 */
export function renderKeyVersions(key: KeyMetadata): string {
  const versions = [...key.versions].sort((a, b) => a.version - b.version);
  return renderTable(
    [
      { header: 'VERSION', align: 'right' },
      { header: 'CREATED' },
      { header: 'STATUS' },
      { header: 'HOLDERS' },
      { header: 'MISSING' },
      { header: 'LAST VERIFIED' },
    ],
    versions.map((version) => [
      String(version.version),
      formatTime(version.createdAt),
      versionStatus(key, version),
      listOrDash(version.replicas.map((replica) => replica.applianceId)),
      listOrDash(version.missingReplicas),
      formatTime(oldestVerification(version)),
    ]),
  );
}

function versionStatus(key: KeyMetadata, version: KeyVersion): string {
  if (version.version === key.primaryVersion) return 'primary';
  if (version.version < key.minDecryptionVersion) return 'retired';
  return '-';
}

function oldestVerification(version: KeyVersion): Date | undefined {
  let oldest: Date | undefined;
  for (const replica of version.replicas) {
    const time = replica.verifiedAt;
    // A copy never verified makes the whole version "never verified".
    if (time === undefined || Number.isNaN(time.getTime())) return undefined;
    if (oldest === undefined || time < oldest) oldest = time;
  }
  return oldest;
}

// Sorted in code-unit order, so that the same key prints the same way
// whatever order the broker listed its appliances in.
function listOrDash(ids: readonly string[]): string {
  return ids.length === 0 ? '-' : [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(', ');
}

/** A timestamp to the second, in UTC: `2026-11-30T04:54:00Z`. */
export function formatTime(time: Date | undefined): string {
  if (time === undefined || Number.isNaN(time.getTime())) return '-';
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
