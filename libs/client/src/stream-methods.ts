import type { Client } from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
import {
  AuditServiceService,
  BackupServiceService,
  CreateBackupRequest,
  RestoreBackupRequest,
  TailAuditRequest,
  type AuditRecord,
  type BackupProgress,
  type BackupSummary,
} from '@hsm-broker/proto';
import { BackupAssembly, type BackupResult } from './backup-assembly.js';
import { checkDeadlineMs, type BrokerCallOptions } from './call-options.js';
import type { ChannelCalls } from './channel-calls.js';
import type { PartialMessage } from './partial-message.js';
import { openSignStream, type SignStreamSession } from './sign-stream-session.js';

/** Per-call settings of {@link BrokerClient.createBackup} and {@link BrokerClient.restoreBackup}. */
export interface BackupCallOptions extends BrokerCallOptions {
  /**
   * Called with each progress event the broker sends (`stage`, `done`,
   * `total`), in order. An exception thrown here cancels the call.
   */
  onProgress?: (progress: BackupProgress) => void;
}

/** The streaming calls of a {@link BrokerClient}: SignStream, backup and restore, and the audit tail. */
export interface StreamMethods {
  /**
   * Opens a SignStream for high-rate signing: requests are answered as they
   * are signed, matched by id. `deadlineMs` (of `options`, else the
   * client's) bounds the whole stream.
   */
  openSignStream(options?: BrokerCallOptions): SignStreamSession;
  /**
   * Backs up every key version, wrapped under the backup key. Resolves with
   * the whole file once its SHA-256 matches the broker's summary; rejects
   * with DATA_LOSS when it does not, or when the stream ends without a
   * summary. The deadline defaults to `backupDeadlineMs` (10 minutes).
   */
  createBackup(options?: BackupCallOptions): Promise<BackupResult>;
  /**
   * Restores a file made by {@link BrokerClient.createBackup} into a fleet
   * that holds none of its keys. The broker checks the whole file before
   * changing anything: a damaged one is refused with INVALID_ARGUMENT, a
   * fleet that already holds one of its keys with ALREADY_EXISTS. The
   * deadline defaults to `backupDeadlineMs` (10 minutes).
   */
  restoreBackup(backup: Uint8Array, options?: BackupCallOptions): Promise<BackupSummary>;
  /**
   * Streams audit records: the `backlog` most recent matching ones, then new
   * ones as the broker writes them, each handed to `onRecord` in order.
   * Runs until `options.signal` aborts it (rejecting with CANCELLED), its
   * deadline passes (none by default) or the broker ends it.
   */
  tailAudit(
    request: PartialMessage<TailAuditRequest>,
    onRecord: (record: AuditRecord) => void,
    options?: BrokerCallOptions,
  ): Promise<void>;
}

/** The streaming calls over `channel`, with the client's default and backup deadlines. */
export function streamMethods(channel: Client, { serverStream }: ChannelCalls, clientDeadlineMs: number, clientBackupDeadlineMs: number): StreamMethods {
  return {
    openSignStream: (callOptions = {}) =>
      openSignStream(channel, checkDeadlineMs('deadlineMs', callOptions.deadlineMs ?? clientDeadlineMs), callOptions),
    async createBackup(callOptions = {}) {
      const assembly = new BackupAssembly(callOptions.onProgress);
      await serverStream(
        BackupServiceService.createBackup,
        CreateBackupRequest.fromPartial({}),
        callOptions,
        clientBackupDeadlineMs,
        (event) => assembly.add(event),
      );
      return assembly.finish();
    },
    async restoreBackup(backup, callOptions = {}) {
      let summary: BackupSummary | undefined;
      await serverStream(
        BackupServiceService.restoreBackup,
        RestoreBackupRequest.fromPartial({ backup: toBuffer(backup) }),
        callOptions,
        clientBackupDeadlineMs,
        (event) => {
          if (event.summary !== undefined) summary = event.summary;
          else if (event.progress !== undefined) callOptions.onProgress?.(event.progress);
        },
      );
      if (summary === undefined) {
        throw new BrokerError(Code.INTERNAL, 'RestoreBackup: the stream ended without a summary', {
          reason: 'BACKUP_STREAM_INVALID',
        });
      }
      return summary;
    },
    tailAudit: (request, onRecord, callOptions = {}) =>
      // A tail is meant to stay open: no deadline unless the caller sets one.
      serverStream(AuditServiceService.tailAudit, TailAuditRequest.fromPartial(request), callOptions, Infinity, (event) => {
        if (event.record !== undefined) onRecord(event.record);
      }),
  };
}

/** A Buffer over the same memory, without copying. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
