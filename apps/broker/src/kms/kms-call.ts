import { Metadata } from '@grpc/grpc-js';
import type { ServerUnaryCall, ServiceError, handleUnaryCall } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import type { CallPipeline, SurfaceCall } from '../call-pipeline.js';
import { unidentifiedIdentity } from '../access/peer-identity.js';
import { RefusedRequest } from '../receive-guard.js';

/** Who sent a KMS request, as the signature proved it, and where from. */
export interface KmsCaller {
  identity: string;
  /** Transport address in the gRPC form (`ipv4:127.0.0.1:53122`). */
  peer: string;
  requestId: string;
  /** Absolute deadline (ms since epoch). */
  deadline: number;
}

const callerOf = new WeakMap<object, KmsCaller>();

/**
 * The broker's call pipeline for KMS requests: the same admission, policy,
 * quotas and audit as gRPC, but the caller is named by the SigV4 signature
 * the listener verified rather than by a client certificate.
 */
export function kmsPipeline(pipeline: CallPipeline): CallPipeline {
  return { ...pipeline, identify: (call: SurfaceCall) => callerOf.get(call)?.identity ?? unidentifiedIdentity };
}

/**
 * Runs one broker handler (the same function gRPC calls) for a KMS request
 * and returns its answer or its failure as a BrokerError. `build` turns the
 * KMS request into the broker's; when it throws, the handler still runs with
 * the refusal in place of a request, so the caller's mistake passes the
 * pipeline and is audited like a malformed gRPC request.
 */
export function invoke<Req, Res>(handler: handleUnaryCall<Req, Res>, build: () => Req, caller: KmsCaller): Promise<Res> {
  let request: Req | RefusedRequest;
  try {
    request = build();
  } catch (error: unknown) {
    request = new RefusedRequest(BrokerError.from(error));
  }
  const metadata = new Metadata();
  metadata.set('x-request-id', caller.requestId);
  const call = {
    request,
    metadata,
    getPeer: () => caller.peer,
    getDeadline: () => caller.deadline,
    getAuthContext: () => ({}),
  };
  callerOf.set(call, caller);
  return new Promise<Res>((resolve, reject) => {
    handler(call as unknown as ServerUnaryCall<Req, Res>, (error: Partial<ServiceError> | null, response?: Res | null) => {
      if (error) {
        const [reason] = error.metadata?.get(reasonTrailer) ?? [];
        reject(new BrokerError((error.code ?? Code.UNKNOWN) as Code, error.details ?? error.message ?? 'failed', typeof reason === 'string' ? { reason } : {}));
        return;
      }
      if (response === undefined || response === null) {
        reject(new Error('handler answered without a response'));
        return;
      }
      resolve(response);
    });
  });
}
