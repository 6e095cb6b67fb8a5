import { createHash } from 'node:crypto';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { BackupProgress, BackupSummary, CreateBackupResponse } from '@hsm-broker/proto';

/** A backup as {@link BrokerClient.createBackup} resolves with it. */
export interface BackupResult {
  /** The whole backup file, byte for byte as the broker made it. */
  backup: Buffer;
  /** What the broker says the file holds; its `sha256` matches `backup`. */
  summary: BackupSummary;
}

/**
 * Puts a backup together from the events of a CreateBackup stream: chunks
 * are kept in the order they arrive, progress goes to `onProgress`, and
 * {@link BackupAssembly.finish} checks the file against the summary's
 * SHA-256. A file that does not match is refused with DATA_LOSS rather than
 * handed over: a damaged backup is found when it is needed, which is too
 * late.
 */
export class BackupAssembly {
  readonly #chunks: Buffer[] = [];
  readonly #onProgress: ((progress: BackupProgress) => void) | undefined;
  #bytes = 0;
  #summary: BackupSummary | undefined;

  constructor(onProgress?: (progress: BackupProgress) => void) {
    this.#onProgress = onProgress;
  }

  /** Takes one event of the stream. A second summary is a broker fault (INTERNAL). */
  add(event: CreateBackupResponse): void {
    if (event.chunk !== undefined) {
      this.#chunks.push(event.chunk);
      this.#bytes += event.chunk.length;
    } else if (event.summary !== undefined) {
      if (this.#summary !== undefined) {
        throw new BrokerError(Code.INTERNAL, 'CreateBackup: the broker sent two summaries', {
          reason: 'BACKUP_STREAM_INVALID',
        });
      }
      this.#summary = event.summary;
    } else if (event.progress !== undefined) {
      this.#onProgress?.(event.progress);
    }
    // An event of a kind this build does not know (a newer broker) is skipped.
  }

  /** The assembled file, once the stream has ended without error. */
  finish(): BackupResult {
    const summary = this.#summary;
    if (summary === undefined) {
      throw new BrokerError(
        Code.DATA_LOSS,
        `CreateBackup: the stream ended after ${String(this.#bytes)} bytes without a summary, so the backup cannot be checked; do not keep it`,
        { reason: 'BACKUP_UNVERIFIED', details: { bytes: this.#bytes } },
      );
    }
    const backup = Buffer.concat(this.#chunks, this.#bytes);
    const actual = createHash('sha256').update(backup).digest('hex');
    const expected = summary.sha256.trim().toLowerCase();
    if (actual !== expected) {
      throw new BrokerError(
        Code.DATA_LOSS,
        `CreateBackup: the ${String(backup.length)} bytes received have SHA-256 ${actual}, ` +
          `but the broker's summary says ${expected === '' ? '(none)' : expected}; the backup is damaged, do not keep it`,
        {
          reason: 'BACKUP_DIGEST_MISMATCH',
          details: { bytes: backup.length, expectedSha256: expected, actualSha256: actual },
        },
      );
    }
    return { backup, summary };
  }
}
