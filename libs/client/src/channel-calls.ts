import { status as GrpcStatus, type Client, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
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

/** The calls of {@link ChannelCalls} on `channel`; a call without its own deadline gets `clientDeadlineMs`. */
export function channelCalls(channel: Client, clientDeadlineMs: number): ChannelCalls {
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
      try {
        const deadlineMs = checkDeadlineMs(
          'deadlineMs',
          callOptions.deadlineMs ?? clientDeadlineMs,
        );
        const call = channel.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          toMetadata(callOptions.metadata),
          { deadline: deadlineFrom(deadlineMs) },
          (error: ServiceError | null, response?: Response) => {
            if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
            if (error !== null) reject(toBrokerError(error));
            else if (response === undefined) {
              reject(new BrokerError(Code.INTERNAL, `${method.path}: empty response`));
            } else resolve(response);
          },
        );
        if (signal !== undefined) {
          onAbort = () => call.cancel();
          signal.addEventListener('abort', onAbort, { once: true });
        }
      } catch (error: unknown) {
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
