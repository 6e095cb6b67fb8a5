import type { ServerWritableStream } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import type { BackupProgressEvent, BackupResult, KeyBackup } from '@hsm-broker/keys';
import type { BackupServiceServer, BackupSummary, CreateBackupRequest, CreateBackupResponse, RestoreBackupRequest, RestoreBackupResponse } from '@hsm-broker/proto';
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { CallPipeline } from './call-pipeline.js';
import { contextOf } from './call-pipeline.js';
import { beginCallTrace } from './call-trace.js';
import { toServiceError } from './grpc-errors.js';
import { deadlineOf } from './unary-handler.js';

const chunkBytes = 256 * 1024;

function summaryOf(result: BackupResult, sha256: string): BackupSummary {
  return { keys: result.keys, keyVersions: result.keyVersions, sha256, createdAt: new Date(result.createdAt), backupKeyId: result.backupKeyId };
}

/**
 * Runs one streaming backup call through the pipeline: progress events as
 * they happen, errors as a proper status. Only one backup or restore runs at
 * a time.
 */
function streaming<Req, Res>(
  method: string,
  pipeline: CallPipeline,
  lock: { busy: boolean },
  body: (request: Req, send: (response: Res) => void) => Promise<void>,
): (call: ServerWritableStream<Req, Res>) => void {
  const { log } = pipeline;
  return (call) => {
    const started = performance.now();
    const context = contextOf(call, method, deadlineOf(call.getDeadline()), pipeline);
    const span = beginCallTrace(pipeline.tracer, call, context);
    const headers = span.responseMetadata();
    if (headers) call.sendMetadata(headers);
    const finish = (code: number, reason?: string): void => {
      span.end(code, reason);
      try {
        pipeline.finished(context, { code, ...(reason === undefined ? {} : { reason }), latencyMs: performance.now() - started });
      } catch (error: unknown) {
        log.error('call bookkeeping failed', { method, error: error instanceof Error ? error.message : String(error) });
      }
    };
    const fail = (error: unknown): void => {
      const serviceError = toServiceError(error);
      log.warn(`${method} failed`, { code: serviceError.code, detail: serviceError.message });
      call.emit('error', serviceError);
      const [reason] = serviceError.metadata?.get(reasonTrailer) ?? [];
      finish(serviceError.code ?? status.UNKNOWN, typeof reason === 'string' ? reason : undefined);
    };
    let owner = false;
    void span.run(() => Promise.resolve()
      .then(() => pipeline.admit(context, call.request))
      .then(() => {
        if (lock.busy) {
          throw new BrokerError(Code.ABORTED, 'another backup or restore is running; try again when it ends', { reason: 'BACKUP_IN_PROGRESS', retryable: true });
        }
        lock.busy = true;
        owner = true;
        return body(call.request, (response) => {
          // A caller that went away stops the work at the next step.
          if (call.cancelled) throw new BrokerError(Code.CANCELLED, `${method} cancelled by the caller`, { reason: 'CANCELLED' });
          call.write(response);
        });
      })
      .then(() => {
        call.end();
        finish(status.OK);
      }, fail)
      .finally(() => {
        if (owner) lock.busy = false;
      }));
  };
}

/** BackupService: backups of every key, and restores into an empty fleet. */
export function backupService(backup: KeyBackup | undefined, pipeline: CallPipeline): BackupServiceServer {
  const { log } = pipeline;
  const lock = { busy: false };
  const available = (): KeyBackup => {
    if (!backup) {
      throw new BrokerError(Code.FAILED_PRECONDITION, 'backups need a backup HSM: configure backupHsm (or use the embedded fleet)', { reason: 'NO_BACKUP_HSM' });
    }
    return backup;
  };
  const progress = (event: BackupProgressEvent): { progress: { stage: string; done: number; total: number } } => ({ progress: event });
  return {
    createBackup: streaming<CreateBackupRequest, CreateBackupResponse>('CreateBackup', pipeline, lock, async (_request, send) => {
      const { file, result } = await available().create((event) => send(progress(event)));
      for (let offset = 0; offset < file.length; offset += chunkBytes) send({ chunk: file.subarray(offset, offset + chunkBytes) });
      send({ summary: summaryOf(result, createHash('sha256').update(file).digest('hex')) });
      log.info('backup sent', { keys: result.keys, keyVersions: result.keyVersions, bytes: file.length });
    }),
    restoreBackup: streaming<RestoreBackupRequest, RestoreBackupResponse>('RestoreBackup', pipeline, lock, async (request, send) => {
      if (request.backup.length === 0) throw BrokerError.invalidArgument('backup', 'is empty', 'INVALID_BACKUP');
      const result = await available().restore(request.backup, (event) => send(progress(event)));
      send({ summary: summaryOf(result, createHash('sha256').update(request.backup).digest('hex')) });
    }),
  };
}
