import { status } from '@grpc/grpc-js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import { SignRequest } from '@hsm-broker/proto';
import type { SignResponse, SignStreamRequest, SignStreamResponse } from '@hsm-broker/proto';
import type { CallContext, CallPipeline } from './call-pipeline.js';
import { contextOf } from './call-pipeline.js';
import { runItem } from './call-items.js';
import type { Operation } from './crypto-operations.js';
import { toServiceError } from './grpc-errors.js';
import { RefusedRequest } from './receive-guard.js';
import { maxStreamRequestIdBytes } from './request-limits.js';
import { deadlineOf } from './unary-handler.js';

/**
 * Requests of one stream being signed at once. When this many are in
 * flight the broker stops reading the stream, so HTTP/2 flow control pushes
 * back on the caller instead of the broker buffering without bound.
 */
export const maxStreamInFlight = 256;

/** What the flow control of SignStream did, for operators and tests. */
export class SignStreamStats {
  /** Streams open now. */
  open = 0;
  /** Times a stream stopped reading because it had {@link maxStreamInFlight} requests in flight or its caller read too slowly. */
  pauses = 0;
  /** Requests taken off streams since start-up. */
  requests = 0;
  /** Most requests one stream has had in flight at once. */
  peakInFlight = 0;
  readonly #pauseListeners: (() => void)[] = [];

  /** Calls `listener` each time a stream stops reading. Listeners must not throw. */
  onPause(listener: () => void): void {
    this.#pauseListeners.push(listener);
  }

  /** @internal */
  paused(): void {
    this.pauses += 1;
    for (const listener of this.#pauseListeners) listener();
  }
}

function requestIdProblem(id: string, inFlight: ReadonlySet<string>): BrokerError | undefined {
  if (id === '') return BrokerError.invalidArgument('request_id', 'is required', 'MISSING_REQUEST_ID');
  if (Buffer.byteLength(id) > maxStreamRequestIdBytes) return BrokerError.invalidArgument('request_id', `is longer than ${String(maxStreamRequestIdBytes)} bytes`, 'REQUEST_ID_TOO_LONG');
  if (inFlight.has(id)) return BrokerError.invalidArgument('request_id', 'is already in flight on this stream', 'DUPLICATE_REQUEST_ID');
  return undefined;
}

/**
 * SignStream: a bidirectional stream of Sign requests. The stream passes the
 * pipeline once (a grant for SignStream, one audit record when it ends);
 * each request then runs as a unary Sign would (limits, key policy, quota,
 * its own audit record) and is answered with its caller-chosen id as soon
 * as it is done, so answers may come out of order. A stream that breaks
 * loses only the requests in flight on it.
 */
export function signStream(
  pipeline: CallPipeline,
  sign: Operation<SignRequest, SignResponse>,
  stats: SignStreamStats,
): (call: ServerDuplexStream<SignStreamRequest | RefusedRequest, SignStreamResponse>) => void {
  const { log } = pipeline;
  return (call) => {
    const started = performance.now();
    const inFlight = new Set<string>();
    let context: CallContext | undefined;
    let closed = false;
    let inputEnded = false;
    let waitingForDrain = false;
    let paused = false;
    let items = 0;
    let failed = 0;
    stats.open += 1;

    const finish = (code: number, reason?: string): void => {
      if (closed) return;
      closed = true;
      stats.open -= 1;
      if (!context) return;
      context.facts.after = { items, failed };
      try {
        pipeline.finished(context, { code, ...(reason === undefined ? {} : { reason }), latencyMs: performance.now() - started });
      } catch (error: unknown) {
        log.error('call bookkeeping failed', { method: 'SignStream', error: error instanceof Error ? error.message : String(error) });
      }
    };
    const fail = (error: unknown): void => {
      if (closed) return;
      const serviceError = toServiceError(error);
      const [reason] = serviceError.metadata?.get(reasonTrailer) ?? [];
      finish(serviceError.code ?? status.UNKNOWN, typeof reason === 'string' ? reason : undefined);
      call.emit('error', serviceError);
    };
    const endIfDone = (): void => {
      if (closed || !inputEnded || inFlight.size > 0) return;
      finish(status.OK);
      call.end();
    };
    const flow = (): void => {
      const mustWait = inFlight.size >= maxStreamInFlight || waitingForDrain;
      if (mustWait && !paused) {
        paused = true;
        call.pause();
        stats.paused();
      } else if (!mustWait && paused) {
        paused = false;
        call.resume();
      }
    };
    const answer = (response: SignStreamResponse): void => {
      if (closed) return;
      if (response.error) failed += 1;
      if (!call.write(response)) waitingForDrain = true;
    };
    const take = (message: SignStreamRequest | RefusedRequest): void => {
      if (closed) return;
      // An oversize or undecodable message has no id to answer: the stream ends with the refusal.
      if (message instanceof RefusedRequest) {
        fail(message.error);
        return;
      }
      if (!context) return;
      stats.requests += 1;
      items += 1;
      const id = message.requestId;
      const problem = requestIdProblem(id, inFlight);
      if (problem) {
        const refused = toServiceError(problem);
        answer({ requestId: id, error: { code: refused.code ?? Code.INVALID_ARGUMENT, reason: problem.reason, message: problem.message } });
        return;
      }
      inFlight.add(id);
      stats.peakInFlight = Math.max(stats.peakInFlight, inFlight.size);
      flow();
      // A stream may live for hours: each request gets the deadline a unary call sent now would.
      const itemContext: CallContext = { ...context, deadline: deadlineOf(call.getDeadline()) };
      void runItem(pipeline, itemContext, 'Sign', String(items), message.request ?? SignRequest.fromPartial({}), sign).then((outcome) => {
        inFlight.delete(id);
        answer({ requestId: id, ...outcome });
        flow();
        endIfDone();
      });
    };

    call.on('cancelled', () => finish(status.CANCELLED, 'CANCELLED'));
    call.on('error', () => finish(status.CANCELLED, 'CANCELLED'));
    // However the stream went away (reset, connection lost), it is finished once closed.
    call.on('close', () => finish(status.CANCELLED, 'CANCELLED'));
    call.on('drain', () => {
      waitingForDrain = false;
      flow();
    });
    try {
      const current = contextOf(call, 'SignStream', deadlineOf(call.getDeadline()), pipeline);
      context = current;
      // Nothing is read before the stream is admitted.
      Promise.resolve(pipeline.admit(current, undefined)).then(() => {
        call.on('data', take);
        call.on('end', () => {
          inputEnded = true;
          endIfDone();
        });
      }, fail);
    } catch (error: unknown) {
      fail(error);
    }
  };
}
