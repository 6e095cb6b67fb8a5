import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackupSummary } from '@hsm-broker/client';
import { renderBackupCreated, renderBackupRestored } from './backup-view.js';

const summary = BackupSummary.fromPartial({
  keys: 4,
  keyVersions: 6,
  sha256: 'ab'.repeat(32),
  createdAt: new Date('2026-11-30T05:00:00.500Z'),
  backupKeyId: 'bk-1',
});

describe('backup views', () => {
  it('says where the backup went, what it holds and how to check it', () => {
    assert.equal(
      renderBackupCreated('/backups/fleet.hsmb', 12_345, summary),
      [
        'Wrote /backups/fleet.hsmb: 4 keys, 6 key versions, 12345 bytes.',
        `SHA-256:     ${'ab'.repeat(32)}`,
        'Created:     2026-11-30T05:00:00Z',
        'Backup key:  bk-1',
        '',
      ].join('\n'),
    );
  });

  it('says what was restored, in the singular where it applies', () => {
    const one = BackupSummary.fromPartial({ keys: 1, keyVersions: 1 });
    assert.equal(
      renderBackupRestored('fleet.hsmb', 'cd'.repeat(32), one),
      [
        'Restored fleet.hsmb: 1 key, 1 key version.',
        `SHA-256:     ${'cd'.repeat(32)}`,
        'Created:     -',
        'Backup key:  -',
        '',
      ].join('\n'),
    );
  });
});
