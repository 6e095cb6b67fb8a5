import { status } from '@grpc/grpc-js';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { AuditEntry } from '@hsm-broker/audit';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import { AuditResult } from '@hsm-broker/proto';
import type { AuditFilter, AuditRecord, AuditServiceServer, TailAuditRequest, TailAuditResponse } from '@hsm-broker/proto';
import { matchesQuery } from './audit-query.js';
import type { AuditQuery, AuditResultFilter } from './audit-query.js';
import type { AuditTrail, WrittenEntry } from './audit-trail.js';
import type { CallContext, CallPipeline } from './call-pipeline.js';
import { contextOf } from './call-pipeline.js';
import { toServiceError } from './grpc-errors.js';
import { deadlineOf, unary } from './unary-handler.js';

const maxLimit = 1000;
const maxFilterLength = 256;
/** A tail that cannot keep up is ended rather than buffered without bound. */
const maxTailBacklogBytes = 8 * 1024 * 1024;

const results: Record<AuditResult, AuditResultFilter | undefined> = {
  [AuditResult.UNSPECIFIED]: 'any',
  [AuditResult.OK]: 'ok',
  [AuditResult.DENIED]: 'denied',
  [AuditResult.FAILED]: 'failed',
  [AuditResult.UNRECOGNIZED]: undefined,
};

function filterText(value: string, field: string): string | undefined {
  if (value.length > maxFilterLength) throw BrokerError.invalidArgument(field, `is longer than ${String(maxFilterLength)} characters`, 'FILTER_TOO_LONG');
  return value === '' ? undefined : value;
}

function queryOf(filter: AuditFilter | undefined, start?: Date, end?: Date): AuditQuery {
  const result = results[filter?.result ?? AuditResult.UNSPECIFIED];
  if (!result) throw BrokerError.invalidArgument('filter.result', `${String(filter?.result)} is not a valid value; use AUDIT_RESULT_OK, _DENIED or _FAILED`, 'INVALID_ENUM_VALUE');
  const query: AuditQuery = { result };
  const identity = filterText(filter?.identity ?? '', 'filter.identity');
  const operation = filterText(filter?.operation ?? '', 'filter.operation');
  const keyId = filterText(filter?.keyId ?? '', 'filter.key_id');
  if (identity !== undefined) query.identity = identity;
  if (operation !== undefined) query.operation = operation;
  if (keyId !== undefined) query.keyId = keyId;
  if (start) query.start = start.toISOString();
  if (end) query.end = end.toISOString();
  return query;
}

function bounded(value: number, field: string, fallback: number, min: number): number {
  if (value === 0) return fallback;
  if (value < min || value > maxLimit) throw BrokerError.invalidArgument(field, `must be ${String(min)} to ${String(maxLimit)}, got ${String(value)}`, 'INVALID_LIMIT');
  return value;
}

/** A trail entry as AuditService returns it. */
export function auditRecordOf({ entry, line }: { entry: AuditEntry; line: string }): AuditRecord {
  if (entry.type !== 'call') return { seq: entry.seq, time: new Date(entry.time), identity: '', peer: '', operation: '', keyId: '', keyVersion: 0, appliances: [], code: 0, reason: '', latencyMs: 0, requestId: '', json: line };
  return {
    seq: entry.seq,
    time: new Date(entry.time),
    identity: entry.identity,
    peer: entry.peer,
    operation: entry.operation,
    keyId: entry.keyId ?? '',
    keyVersion: entry.keyVersion ?? 0,
    appliances: entry.appliances,
    code: entry.code,
    reason: entry.reason ?? '',
    latencyMs: entry.latencyMs,
    requestId: entry.requestId,
    json: line,
  };
}

/** TailAudit: the backlog from the files, then live entries, each sent once and in order. */
function tail(trail: AuditTrail, pipeline: CallPipeline): (call: ServerWritableStream<TailAuditRequest, TailAuditResponse>) => void {
  const { log } = pipeline;
  return (call) => {
    const started = performance.now();
    let context: CallContext | undefined;
    let unsubscribe: (() => void) | undefined;
    let done = false;
    const finish = (code: number, reason?: string): void => {
      unsubscribe?.();
      if (done || !context) return;
      done = true;
      try {
        pipeline.finished(context, { code, ...(reason === undefined ? {} : { reason }), latencyMs: performance.now() - started });
      } catch (error: unknown) {
        log.error('call bookkeeping failed', { method: 'TailAudit', error: error instanceof Error ? error.message : String(error) });
      }
    };
    const fail = (error: unknown): void => {
      const serviceError = toServiceError(error);
      call.emit('error', serviceError);
      const [reason] = serviceError.metadata?.get(reasonTrailer) ?? [];
      finish(serviceError.code ?? status.UNKNOWN, typeof reason === 'string' ? reason : undefined);
    };
    call.on('cancelled', () => finish(status.CANCELLED, 'CANCELLED'));
    let lastSeq = 0;
    const send = (written: WrittenEntry): void => {
      if (done || written.entry.seq <= lastSeq) return;
      lastSeq = written.entry.seq;
      if (call.writableLength > maxTailBacklogBytes) {
        fail(new BrokerError(Code.RESOURCE_EXHAUSTED, 'TailAudit: the caller reads too slowly; start the tail again', { reason: 'AUDIT_TAIL_BEHIND', retryable: true }));
        return;
      }
      call.write({ record: auditRecordOf(written) });
    };
    try {
      const current = contextOf(call, 'TailAudit', deadlineOf(call.getDeadline()), pipeline);
      context = current;
      Promise.resolve(pipeline.admit(current, call.request))
        .then(async () => {
          const query = queryOf(call.request.filter);
          const backlog = call.request.backlog === 0 ? 0 : bounded(call.request.backlog, 'backlog', 0, 1);
          const early: WrittenEntry[] = [];
          let live = false;
          unsubscribe = trail.subscribe((written) => {
            if (!matchesQuery(written.entry, query)) return;
            if (live) send(written);
            else early.push(written);
          });
          const { records } = backlog > 0 ? await trail.search(query, backlog) : { records: [] };
          // The search's snapshot and the entries written since subscribing
          // overlap; together, in seq order, they miss nothing.
          for (const written of [...records, ...early].sort((a, b) => a.entry.seq - b.entry.seq)) send(written);
          live = true;
        })
        .catch(fail);
    } catch (error: unknown) {
      fail(error);
    }
  };
}

/** AuditService: searches and tails of the audit trail, and its status. */
export function auditService(trail: AuditTrail, pipeline: CallPipeline): AuditServiceServer {
  return {
    searchAudit: unary('SearchAudit', pipeline, async (request) => {
      const limit = bounded(request.limit, 'limit', 100, 1);
      if (request.startTime && request.endTime && request.startTime >= request.endTime) {
        throw BrokerError.invalidArgument('end_time', 'must be after start_time', 'INVALID_TIME_RANGE');
      }
      const { records, truncated } = await trail.search(queryOf(request.filter, request.startTime, request.endTime), limit);
      return { records: records.map(auditRecordOf), truncated };
    }),
    tailAudit: tail(trail, pipeline),
    getAuditStatus: unary('GetAuditStatus', pipeline, () => {
      const current = trail.status();
      return {
        file: current.file,
        lastSeq: current.lastSeq,
        lastCheckpointSeq: current.lastCheckpointSeq,
        signingKeyFingerprint: current.signingKeyFingerprint,
        collectors: current.collectors,
        writeFailuresTotal: current.writeFailuresTotal,
      };
    }),
  };
}
