import type { BackupSummary } from '@hsm-broker/client';
import { formatTime } from './key-view.js';
import { printable } from './text-table.js';

/**
 * What `backup create` prints once the file is in place: where it went, what
 * it holds, and the facts needed to find and check it later (digest, when it
 * was made, the backup key it needs).
 */
export function renderBackupCreated(path: string, bytes: number, summary: BackupSummary): string {
  return [
    `Wrote ${printable(path)}: ${counts(summary)}, ${String(bytes)} bytes.`,
    ...facts([
      ['SHA-256', summary.sha256],
      ['Created', formatTime(summary.createdAt)],
      ['Backup key', summary.backupKeyId],
    ]),
  ].join('\n') + '\n';
}

/** What `backup restore` prints once the broker has restored a backup. */
export function renderBackupRestored(path: string, sha256: string, summary: BackupSummary): string {
  return [
    `Restored ${printable(path)}: ${counts(summary)}.`,
    ...facts([
      ['SHA-256', sha256],
      ['Created', formatTime(summary.createdAt)],
      ['Backup key', summary.backupKeyId],
    ]),
  ].join('\n') + '\n';
}

function counts(summary: BackupSummary): string {
  const keys = `${String(summary.keys)} ${summary.keys === 1 ? 'key' : 'keys'}`;
  const versions = `${String(summary.keyVersions)} key ${summary.keyVersions === 1 ? 'version' : 'versions'}`;
  return `${keys}, ${versions}`;
}

function facts(fields: readonly [string, string][]): string[] {
  const width = Math.max(...fields.map(([name]) => name.length)) + 1;
  return fields.map(([name, value]) => `${`${name}:`.padEnd(width)}  ${printable(value === '' ? '-' : value)}`);
}
