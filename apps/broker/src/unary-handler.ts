import { status } from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { CallContext, CallPipeline } from './call-pipeline.js';
import { noteResponseKey } from './call-facts.js';
import { contextOf } from './call-pipeline.js';
import { beginCallTrace } from './call-trace.js';
import type { CallTrace } from './call-trace.js';
import { reasonTrailer } from '@hsm-broker/errors';
import { toServiceError } from './grpc-errors.js';

export type { CallContext } from './call-pipeline.js';

/** Longest any request may run, whatever deadline the caller sent (or none). */
const maxRequestMs = 120_000;

/** The caller's deadline as ms since epoch, capped at the broker's maximum. */
export function deadlineOf(raw: Date | number, now = Date.now()): number {
  const callerDeadline = raw instanceof Date ? raw.getTime() : raw;
  return Math.min(Number.isFinite(callerDeadline) ? callerDeadline : Infinity, now + maxRequestMs);
}

/**
 * Adapts a promise-returning handler to grpc-js: the call passes the
 * pipeline's steps, the caller's deadline flows into the handler, every
 * failure becomes a proper status, and a handler bug can never crash the
 * process or leave the call hanging.
 */
export function unary<Req, Res>(
  method: string,
  pipeline: CallPipeline,
  handler: (request: Req, context: CallContext) => Promise<Res> | Res,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  const { log } = pipeline;
  return (call, callback) => {
    const started = performance.now();
    let context: CallContext | undefined;
    let span: CallTrace | undefined;
    let headers: ReturnType<CallTrace['responseMetadata']>;
    let result: Promise<Res>;
    try {
      const current = contextOf(call, method, deadlineOf(call.getDeadline()), pipeline);
      context = current;
      const traced = beginCallTrace(pipeline.tracer, call, current);
      span = traced;
      // Sent with the answer, not now: a client that sees response headers
      // early may no longer retry the call if this replica dies under it.
      headers = traced.responseMetadata();
      result = traced.run(() => Promise.resolve(pipeline.admit(current, call.request)).then(() => handler(call.request, current)));
    } catch (error: unknown) {
      result = Promise.reject(error);
    }
    const finish = (code: number, reason?: string): void => {
      span?.end(code, reason);
      if (!context) return;
      try {
        pipeline.finished(context, { code, ...(reason === undefined ? {} : { reason }), latencyMs: performance.now() - started });
      } catch (error: unknown) {
        log.error('call bookkeeping failed', { method, error: error instanceof Error ? error.message : String(error) });
      }
    };
    // Settled inside the call's scope, so the lines it logs carry the request id.
    const settle = (): Promise<void> => result.then(
      (response) => {
        if (headers) call.sendMetadata(headers);
        callback(null, response);
        if (context) noteResponseKey(context, response);
        finish(status.OK);
      },
      (error: unknown) => {
        const serviceError = toServiceError(error);
        if (serviceError.code === status.INTERNAL) log.error('request failed', { method, error: error instanceof Error ? error.message : String(error) });
        else log.debug('request refused', { method, code: serviceError.code, detail: serviceError.message });
        if (headers) call.sendMetadata(headers);
        callback(serviceError);
        const [reason] = serviceError.metadata?.get(reasonTrailer) ?? [];
        finish(serviceError.code ?? status.UNKNOWN, typeof reason === 'string' ? reason : undefined);
      },
    );
    void (span ? span.run(settle) : settle());
  };
}
