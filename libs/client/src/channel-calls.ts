import { status as GrpcStatus, type Client, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import { checkDeadlineMs, deadlineFrom, toMetadata, type BrokerCallOptions } from './call-options.js';
import { toBrokerError } from './status-error.js';

/** What the generated service descriptors say about one unary or server-streaming method. */
export interface MethodDescriptor<Request, Response> {
  path: string;
  requestSerialize: (value: Request) => Buffer;
  responseDeserialize: (value: Buffer) => Response;
}

/** Unary and server-streaming calls on one channel, with deadlines, metadata, cancellation and errors as BrokerErrors. */
export interface ChannelCalls {
  unary: <Request, Response>(method: MethodDescriptor<Request, Response>, request: Request, callOptions?: BrokerCallOptions) => Promise<Response>;
  serverStream: <Request, Response>(
    method: MethodDescriptor<Request, Response>,
    request: Request,
    callOptions: BrokerCallOptions,
    defaultDeadlineMsForCall: number,
    onMessage: (response: Response) => void,
  ) => Promise<void>;
}

/**
 * How often a unary idempotent call is sent again, beyond grpc-js' own
 * retries, when it failed with UNAVAILABLE that no broker sent (a
 * connection reset by a replica that died mid-call). grpc-js stops retrying
 * a call once any attempt saw response headers, and may spend its attempts
 * on a connection it has not yet seen die; this second layer keeps the
 * promise that a killed replica costs no idempotent call.
 */
const transportRetries = 2;
/** Wait before such a retry: long enough for grpc-js to mark the dead connection, short against any deadline. */
const transportRetryDelayMs = 50;

/** The calls of {@link ChannelCalls} on `channel`; a call without its own deadline gets `clientDeadlineMs`. */
export function channelCalls(channel: Client, clientDeadlineMs: number, retryablePaths: ReadonlySet<string> = new Set()): ChannelCalls {
  function unary<Request, Response>(
    method: MethodDescriptor<Request, Response>,
    request: Request,
    callOptions: BrokerCallOptions = {},
  ): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const { signal } = callOptions;
      if (signal?.aborted === true) {
        reject(new BrokerError(Code.CANCELLED, 'call cancelled before it started', { cause: signal.reason }));
        return;
      }
      let onAbort: (() => void) | undefined;
      let cancelCurrent: (() => void) | undefined;
      let retryTimer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      };
      try {
        const deadlineMs = checkDeadlineMs('deadlineMs', callOptions.deadlineMs ?? clientDeadlineMs);
        const deadline = deadlineFrom(deadlineMs);
        const metadata = toMetadata(callOptions.metadata);
        // The first transport failure: if a resend only runs out the
        // deadline, the caller hears this, as it would have without resends.
        let dropped: ServiceError | undefined;
        const attempt = (retriesLeft: number): void => {
          const call = channel.makeUnaryRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            request,
            metadata,
            { deadline },
            (error: ServiceError | null, response?: Response) => {
              if (error !== null) {
                if (retriesLeft > 0 && retryablePaths.has(method.path) && droppedByTransport(error) && deadline - Date.now() > 2 * transportRetryDelayMs) {
                  dropped ??= error;
                  retryTimer = setTimeout(() => {
                    retryTimer = undefined;
                    attempt(retriesLeft - 1);
                  }, transportRetryDelayMs);
                  return;
                }
                finish();
                reject(toBrokerError(dropped !== undefined && error.code === GrpcStatus.DEADLINE_EXCEEDED ? dropped : error));
              } else if (response === undefined) {
                finish();
                reject(new BrokerError(Code.INTERNAL, `${method.path}: empty response`));
              } else {
                finish();
                resolve(response);
              }
            },
          );
          cancelCurrent = () => call.cancel();
        };
        attempt(transportRetries);
        if (signal !== undefined) {
          onAbort = () => {
            if (retryTimer !== undefined) {
              clearTimeout(retryTimer);
              retryTimer = undefined;
              finish();
              reject(new BrokerError(Code.CANCELLED, 'call cancelled', { cause: signal.reason }));
              return;
            }
            cancelCurrent?.();
          };
          signal.addEventListener('abort', onAbort, { once: true });
        }
      } catch (error: unknown) {
        finish();
        reject(toBrokerError(error));
      }
    });
  }

  /**
   * Calls a server-streaming method, handing each message to `onMessage` in
   * order. Resolves once the stream has ended with status OK; rejects with
   * the call's status otherwise, or with whatever `onMessage` threw (the
   * call is then cancelled).
   */
  function serverStream<Request, Response>(
    method: MethodDescriptor<Request, Response>,
    request: Request,
    callOptions: BrokerCallOptions,
    defaultDeadlineMsForCall: number,
    onMessage: (response: Response) => void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const { signal } = callOptions;
      if (signal?.aborted === true) {
        reject(new BrokerError(Code.CANCELLED, 'call cancelled before it started', { cause: signal.reason }));
        return;
      }
      let settled = false;
      let onAbort: (() => void) | undefined;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(toBrokerError(error));
      };
      try {
        const deadlineMs = checkDeadlineMs('deadlineMs', callOptions.deadlineMs ?? defaultDeadlineMsForCall);
        const call = channel.makeServerStreamRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          toMetadata(callOptions.metadata),
          { deadline: deadlineFrom(deadlineMs) },
        );
        // grpc-js ends the readable side before it reports the status, so
        // success needs both: every message delivered ('end') and an OK status.
        let ended = false;
        let statusOk = false;
        call.on('data', (response: Response) => {
          if (settled) return;
          try {
            onMessage(response);
          } catch (error: unknown) {
            settle(error);
            call.cancel();
          }
        });
        call.on('error', (error: ServiceError) => settle(error));
        call.on('status', (status: StatusObject) => {
          statusOk = status.code === GrpcStatus.OK;
          if (statusOk && ended) settle();
        });
        call.on('end', () => {
          ended = true;
          if (statusOk) settle();
        });
        if (signal !== undefined) {
          onAbort = () => call.cancel();
          signal.addEventListener('abort', onAbort, { once: true });
        }
      } catch (error: unknown) {
        settle(error);
      }
    });
  }
  return { unary, serverStream };
}

/**
 * UNAVAILABLE that no broker sent: a broker's own refusals carry its reason
 * trailer (and a fleet refusal asks not to be retried), while a connection
 * that was reset, refused or closed under the call carries none.
 */
function droppedByTransport(error: ServiceError): boolean {
  return error.code === GrpcStatus.UNAVAILABLE && (error.metadata?.get(reasonTrailer) ?? []).length === 0;
}
