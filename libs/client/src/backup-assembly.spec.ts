import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { BackupSummary, type BackupProgress } from '@hsm-broker/proto';
import { BackupAssembly } from './backup-assembly.js';

const file = Buffer.from('HSMB-BACKUP header\n{"keys":[]} and then some more payload bytes');

function summaryOf(bytes: Buffer, fields: Partial<BackupSummary> = {}): BackupSummary {
  return BackupSummary.fromPartial({
    keys: 2,
    keyVersions: 3,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    createdAt: new Date('2026-11-30T05:00:00Z'),
    backupKeyId: 'bk-1',
    ...fields,
  });
}

function isDataLoss(reason: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof BrokerError, String(error));
    assert.equal(Code[error.code], 'DATA_LOSS');
    assert.equal(error.reason, reason);
    return true;
  };
}

describe('BackupAssembly', () => {
  it('concatenates the chunks in order, passes progress on, and checks the digest', () => {
    const progress: BackupProgress[] = [];
    const assembly = new BackupAssembly((event) => progress.push(event));
    assembly.add({ progress: { stage: 'wrapping', done: 1, total: 2 } });
    assembly.add({ chunk: file.subarray(0, 10) });
    assembly.add({ progress: { stage: 'wrapping', done: 2, total: 2 } });
    assembly.add({ chunk: file.subarray(10, 11) });
    assembly.add({ chunk: Buffer.alloc(0) });
    assembly.add({ chunk: file.subarray(11) });
    assembly.add({ summary: summaryOf(file) });
    const result = assembly.finish();
    assert.deepEqual(result.backup, file);
    assert.equal(result.summary.keyVersions, 3);
    assert.deepEqual(
      progress.map((event) => `${event.stage} ${String(event.done)}/${String(event.total)}`),
      ['wrapping 1/2', 'wrapping 2/2'],
    );
  });

  it('accepts the digest in upper case', () => {
    const assembly = new BackupAssembly();
    assembly.add({ chunk: file });
    assembly.add({ summary: summaryOf(file, { sha256: summaryOf(file).sha256.toUpperCase() }) });
    assert.deepEqual(assembly.finish().backup, file);
  });

  it('refuses a file whose digest differs from the summary with DATA_LOSS', () => {
    const damaged = Buffer.from(file);
    damaged[20] = (damaged[20] ?? 0) ^ 0x01;
    const assembly = new BackupAssembly();
    assembly.add({ chunk: damaged });
    assembly.add({ summary: summaryOf(file) });
    assert.throws(() => assembly.finish(), isDataLoss('BACKUP_DIGEST_MISMATCH'));
  });

  it('refuses a file with a chunk missing, and a summary without a digest', () => {
    const missing = new BackupAssembly();
    missing.add({ chunk: file.subarray(0, 10) });
    missing.add({ summary: summaryOf(file) });
    assert.throws(() => missing.finish(), isDataLoss('BACKUP_DIGEST_MISMATCH'));

    const noDigest = new BackupAssembly();
    noDigest.add({ chunk: file });
    noDigest.add({ summary: summaryOf(file, { sha256: '' }) });
    assert.throws(() => noDigest.finish(), /the broker's summary says \(none\)/);
  });

  it('refuses a stream that ended without a summary with DATA_LOSS', () => {
    const assembly = new BackupAssembly();
    assembly.add({ chunk: file });
    assert.throws(() => assembly.finish(), isDataLoss('BACKUP_UNVERIFIED'));
  });

  it('refuses a second summary', () => {
    const assembly = new BackupAssembly();
    assembly.add({ summary: summaryOf(file) });
    assert.throws(() => assembly.add({ summary: summaryOf(file) }), /two summaries/);
  });
});
