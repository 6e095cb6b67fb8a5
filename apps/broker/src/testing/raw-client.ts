import { Client, Metadata, credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { reasonTrailer } from '@hsm-broker/errors';

/** How a raw call ended. */
export interface RawOutcome {
  /** gRPC status code; 0 when the call succeeded. */
  code: number;
  /** Status message (empty on success). */
  message: string;
  /** The `hsmb-reason` trailer, when the broker sent one. */
  reason: string | undefined;
  /** The serialized response, on success. */
  response: Buffer | undefined;
}

const identity = (bytes: Buffer): Buffer => bytes;

/**
 * A grpc-js client that sends bytes as they are (identity serializers), so
 * tests can put anything on the wire: truncated, oversize or random
 * protobuf that no generated client would produce.
 * @internal
 */
export class RawClient {
  readonly #client: Client;

  constructor(address: string) {
    this.#client = new Client(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  }

  /** One unary call of `path` (`/hsmbroker.v1.CryptoService/Decrypt`) with `body` as the serialized request. */
  unary(path: string, body: Buffer, options: { deadlineMs?: number; metadata?: Metadata } = {}): Promise<RawOutcome> {
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest(
        path,
        identity,
        identity,
        body,
        options.metadata ?? new Metadata(),
        { deadline: Date.now() + (options.deadlineMs ?? 30_000) },
        (error: ServiceError | null, response?: Buffer) => {
          if (error) {
            const [reason] = error.metadata?.get(reasonTrailer) ?? [];
            resolve({ code: error.code, message: error.details, reason: typeof reason === 'string' ? reason : undefined, response: undefined });
          } else {
            resolve({ code: 0, message: '', reason: undefined, response });
          }
        },
      );
    });
  }

  /** A server-streaming call: resolves with the final status once the stream ends. */
  serverStream(path: string, body: Buffer, options: { deadlineMs?: number } = {}): Promise<RawOutcome> {
    return new Promise((resolve) => {
      const stream = this.#client.makeServerStreamRequest(path, identity, identity, body, new Metadata(), { deadline: Date.now() + (options.deadlineMs ?? 30_000) });
      stream.on('data', () => undefined);
      stream.on('error', (error: ServiceError) => {
        const [reason] = error.metadata?.get(reasonTrailer) ?? [];
        resolve({ code: error.code, message: error.details, reason: typeof reason === 'string' ? reason : undefined, response: undefined });
      });
      stream.on('status', (status: { code: number }) => {
        if (status.code === 0) resolve({ code: 0, message: '', reason: undefined, response: undefined });
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
