import { once } from 'node:events';
import type { Client, ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
import { CryptoServiceService, SignRequest } from '@hsm-broker/proto';
import type { ItemError, SignResponse, SignStreamRequest, SignStreamResponse } from '@hsm-broker/proto';
import { deadlineFrom, toMetadata } from './call-options.js';
import type { BrokerCallOptions } from './call-options.js';
import type { PartialMessage } from './broker-client.js';
import { toBrokerError } from './status-error.js';

/**
 * An open SignStream: many Sign requests on one HTTP/2 stream, each
 * answered as soon as it is signed (so answers may come out of order; the
 * session matches them by id). Writes wait while the broker pushes back.
 */
export interface SignStreamSession {
  /** Signs one message or digest; rejects with a `BrokerError` for this request alone. */
  sign(request: PartialMessage<SignRequest>): Promise<SignResponse>;
  /** Requests sent and not answered yet. */
  readonly inFlight: number;
  /** Sends no more requests; resolves once every request sent has been answered and the stream ended. */
  end(): Promise<void>;
  /** Breaks the stream: every request in flight rejects with CANCELLED. */
  cancel(): void;
}

function itemFailure(error: ItemError): BrokerError {
  return new BrokerError(error.code, error.message, { reason: error.reason === '' ? undefined : error.reason });
}

/** Opens a SignStream on `channel`. `deadlineMs` bounds the whole stream. @internal */
export function openSignStream(channel: Client, deadlineMs: number, callOptions: BrokerCallOptions = {}): SignStreamSession {
  const path = CryptoServiceService.signStream.path;
  const call: ClientDuplexStream<SignStreamRequest, SignStreamResponse> = channel.makeBidiStreamRequest(
    path,
    CryptoServiceService.signStream.requestSerialize,
    CryptoServiceService.signStream.responseDeserialize,
    toMetadata(callOptions.metadata),
    { deadline: deadlineFrom(deadlineMs) },
  );
  const pending = new Map<string, { resolve: (response: SignResponse) => void; reject: (error: BrokerError) => void }>();
  let nextId = 0;
  let failure: BrokerError | undefined;
  let writable: Promise<unknown> | undefined;
  const currentFailure = (): BrokerError | undefined => failure;
  const failAll = (error: BrokerError): void => {
    failure ??= error;
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  const finished = new Promise<void>((resolve, reject) => {
    call.on('data', (answer: SignStreamResponse) => {
      const waiter = pending.get(answer.requestId);
      if (!waiter) return;
      pending.delete(answer.requestId);
      if (answer.error) waiter.reject(itemFailure(answer.error));
      else if (answer.response) waiter.resolve(answer.response);
      else waiter.reject(new BrokerError(Code.INTERNAL, `${path}: empty answer to request ${answer.requestId}`));
    });
    call.on('error', (error: ServiceError) => {
      const brokerError = toBrokerError(error);
      failAll(brokerError);
      reject(brokerError);
    });
    call.on('end', () => {
      if (pending.size > 0) failAll(new BrokerError(Code.UNAVAILABLE, `${path}: the stream ended with ${String(pending.size)} requests unanswered`, { retryable: true }));
      resolve();
    });
  });
  // end() is the caller's way to see a stream failure; sign() callers see it too.
  finished.catch(() => undefined);
  const signal = callOptions.signal;
  if (signal) signal.addEventListener('abort', () => call.cancel(), { once: true });
  return {
    async sign(request) {
      const before = failure;
      if (before) throw before;
      if (writable) await writable;
      // The stream may have failed while this request waited for room.
      const during = currentFailure();
      if (during) throw during;
      const requestId = String(nextId++);
      const answered = new Promise<SignResponse>((resolve, reject) => pending.set(requestId, { resolve, reject }));
      if (!call.write({ requestId, request: SignRequest.fromPartial(request) })) {
        // The broker (or the transport) pushes back: later requests wait for room.
        writable ??= once(call, 'drain').finally(() => {
          writable = undefined;
        });
      }
      return answered;
    },
    get inFlight() {
      return pending.size;
    },
    async end() {
      call.end();
      await finished;
    },
    cancel() {
      call.cancel();
    },
  };
}
