import { status } from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from './logger.js';
import { toServiceError } from './grpc-errors.js';

/** What a handler learns about its call besides the request. */
export interface CallContext {
  /** Absolute deadline (ms since epoch): the caller's, capped at the broker's maximum. */
  deadline: number;
  method: string;
}

/** Longest any request may run, whatever deadline the caller sent (or none). */
const maxRequestMs = 120_000;

/**
 * Adapts a promise-returning handler to grpc-js: the caller's deadline flows
 * into the handler, every failure becomes a proper status, and a handler
 * bug can never crash the process or leave the call hanging.
 */
export function unary<Req, Res>(
  method: string,
  log: Logger,
  handler: (request: Req, context: CallContext) => Promise<Res> | Res,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const raw = call.getDeadline();
    const callerDeadline = raw instanceof Date ? raw.getTime() : raw;
    const deadline = Math.min(Number.isFinite(callerDeadline) ? callerDeadline : Infinity, Date.now() + maxRequestMs);
    let result: Promise<Res>;
    try {
      result = Promise.resolve(handler(call.request, { deadline, method }));
    } catch (error: unknown) {
      result = Promise.reject(error);
    }
    result.then(
      (response) => callback(null, response),
      (error: unknown) => {
        const serviceError = toServiceError(error);
        if (serviceError.code === status.INTERNAL) log.error('request failed', { method, error: error instanceof Error ? error.message : String(error) });
        else log.debug('request refused', { method, code: serviceError.code, message: serviceError.message });
        callback(serviceError);
      },
    );
  };
}
