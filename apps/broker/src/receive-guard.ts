import { Metadata, ServerInterceptingCall, ServerListenerBuilder, status } from '@grpc/grpc-js';
import type { ServerInterceptor, ServiceDefinition } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import type { CallPipeline } from './call-pipeline.js';
import { checkRequestLimits, fallbackLimits, fieldTooLarge, methodLimits } from './request-limits.js';
import type { MethodLimits, ReceiveLimits } from './request-limits.js';

/**
 * A request refused before any handler ran: oversize, undecodable, or sent
 * with too much metadata. It travels in place of the decoded request, so the
 * refusal still passes the call pipeline (and is audited like any other
 * call) while no handler, and so no worker, ever sees the bytes.
 */
export class RefusedRequest {
  constructor(readonly error: BrokerError) {}
}

function methodName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Reads the top-level fields of a serialized message without decoding it
 * (tags and lengths only; a bounded number of them) and returns the number
 * of the longest length-delimited field, so an oversize request can be
 * refused naming the field that made it oversize.
 */
export function longestField(bytes: Uint8Array, maxFields = 256): { number: number; length: number } | undefined {
  let offset = 0;
  let longest: { number: number; length: number } | undefined;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 35 && offset < bytes.length; shift += 7) {
      const byte = bytes[offset++] ?? 0;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    return undefined;
  };
  for (let seen = 0; seen < maxFields && offset < bytes.length; seen++) {
    const tag = varint();
    if (tag === undefined) break;
    const wireType = tag % 8;
    const number = Math.floor(tag / 8);
    if (wireType === 0) {
      if (varint() === undefined) break;
    } else if (wireType === 1) {
      offset += 8;
    } else if (wireType === 5) {
      offset += 4;
    } else if (wireType === 2) {
      const length = varint();
      if (length === undefined) break;
      const present = Math.min(length, bytes.length - offset);
      if (!longest || present > longest.length) longest = { number, length: present };
      offset += length;
    } else {
      break;
    }
  }
  return longest;
}

function oversize(method: string, limits: MethodLimits, bytes: Uint8Array): BrokerError {
  const field = longestField(bytes);
  const limit = field && limits.fields.find((candidate) => candidate.number === field.number);
  if (field && limit && field.length > limit.maxBytes) return fieldTooLarge(limit, field.length);
  return new BrokerError(Code.INVALID_ARGUMENT, `request: a ${method} request is ${String(bytes.length)} bytes; at most ${String(limits.maxMessageBytes)} are allowed`, {
    reason: 'REQUEST_TOO_LARGE',
    details: { field: 'request', bytes: bytes.length, maxBytes: limits.maxMessageBytes },
  });
}

/** Per-method request checks, built once from the configured limits. */
export class ReceiveGuard {
  readonly #limits: Readonly<Record<string, MethodLimits>>;
  readonly settings: ReceiveLimits;

  constructor(settings: ReceiveLimits) {
    this.settings = settings;
    this.#limits = methodLimits(settings);
  }

  /** The limits of an RPC method (`Decrypt`, …). */
  limitsOf(method: string): MethodLimits {
    return this.#limits[method] ?? fallbackLimits;
  }

  /**
   * grpc-js server options: the transport takes no message larger than the
   * largest request of the API (a whole backup for RestoreBackup) and no
   * more concurrent calls per connection than configured.
   */
  serverOptions(): { 'grpc.max_receive_message_length': number; 'grpc.max_concurrent_streams': number; interceptors: ServerInterceptor[] } {
    return {
      // 1 KiB above the backup covers the RestoreBackupRequest's own tag and length.
      'grpc.max_receive_message_length': this.settings.maxBackupBytes + 1024,
      'grpc.max_concurrent_streams': this.settings.maxConcurrentStreams,
      interceptors: [this.#metadataInterceptor()],
    };
  }

  /**
   * A copy of a service definition whose request decoders refuse, before
   * decoding anything, a request longer than its method allows, and turn an
   * undecodable one into INVALID_ARGUMENT (grpc-js would answer INTERNAL).
   */
  service<S extends ServiceDefinition>(definition: S): S {
    const guarded: Record<string, unknown> = {};
    for (const [name, rpc] of Object.entries(definition)) {
      const method = methodName(rpc.path);
      const limits = this.limitsOf(method);
      guarded[name] = {
        ...rpc,
        requestDeserialize: (bytes: Buffer): unknown => {
          if (bytes.length > limits.maxMessageBytes) return new RefusedRequest(oversize(method, limits, bytes));
          try {
            return rpc.requestDeserialize(bytes);
          } catch {
            return new RefusedRequest(
              new BrokerError(Code.INVALID_ARGUMENT, `request: not a valid ${method} request (protobuf decoding failed)`, {
                reason: 'MALFORMED_REQUEST',
                details: { field: 'request' },
              }),
            );
          }
        },
      };
    }
    return guarded as S;
  }

  /**
   * The pipeline with the request checks in front: a refused or oversize
   * request is answered before identity, policy or quota look at it (a
   * policy must never glob-match a megabyte key id).
   */
  pipeline(next: CallPipeline): CallPipeline {
    return {
      ...next,
      admit: (context, request) => {
        if (request instanceof RefusedRequest) throw request.error;
        checkRequestLimits(this.limitsOf(context.method), request);
        return next.admit(context, request);
      },
    };
  }

  /** The metadata check: entries and bytes of the caller's headers. */
  #metadataRefusal(metadata: Metadata): BrokerError | undefined {
    // Every value of every key: a repeated header counts each time it is sent.
    const entries = Object.entries(metadata.toJSON()).flatMap(([key, values]) => values.map((value) => [key, value] as const));
    let bytes = 0;
    for (const [key, value] of entries) bytes += key.length + (typeof value === 'string' ? Buffer.byteLength(value) : value.length);
    const { maxMetadataBytes, maxMetadataEntries } = this.settings;
    if (entries.length <= maxMetadataEntries && bytes <= maxMetadataBytes) return undefined;
    return new BrokerError(
      Code.INVALID_ARGUMENT,
      `metadata: ${String(entries.length)} entries of ${String(bytes)} bytes; at most ${String(maxMetadataEntries)} entries of ${String(maxMetadataBytes)} bytes are allowed`,
      { reason: 'METADATA_TOO_LARGE', details: { field: 'metadata', entries: entries.length, bytes } },
    );
  }

  #metadataInterceptor(): ServerInterceptor {
    return (descriptor, call) => {
      let refusal: BrokerError | undefined;
      // The broker's own services answer through the pipeline (and so the audit trail);
      // health and reflection are answered here.
      const viaPipeline = descriptor.path.startsWith('/hsmbroker.');
      return new ServerInterceptingCall(call, {
        start: (next) => {
          next(
            new ServerListenerBuilder()
              .withOnReceiveMetadata((metadata, pass) => {
                refusal = this.#metadataRefusal(metadata);
                if (refusal && !viaPipeline) {
                  const trailers = new Metadata();
                  trailers.set(reasonTrailer, refusal.reason);
                  call.sendStatus({ code: status.INVALID_ARGUMENT, details: refusal.message, metadata: trailers });
                  return;
                }
                pass(metadata);
              })
              .withOnReceiveMessage((message, pass) => pass(refusal ? new RefusedRequest(refusal) : message))
              .build(),
          );
        },
      });
    };
  }
}
