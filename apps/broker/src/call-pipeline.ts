import { randomUUID } from 'node:crypto';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from './logger.js';

/**
 * Facts a handler learns while it serves a call (which key, which version,
 * which appliances answered, what changed). The audit trail reads them once
 * the call is answered; handlers fill in what they know and leave the rest.
 */
export interface CallFacts {
  keyId?: string;
  keyVersion?: number;
  /** Appliances that served the call, in the order they were tried. */
  appliances: string[];
  /** State before a lifecycle or fleet change (for example `{ keyState: 'ENABLED' }`). */
  before?: Record<string, unknown>;
  /** State after that change. */
  after?: Record<string, unknown>;
}

/** What a handler learns about its call besides the request. */
export interface CallContext {
  /** Absolute deadline (ms since epoch): the caller's, capped at the broker's maximum. */
  deadline: number;
  /** RPC method name as in the proto (`Encrypt`, `DrainAppliance`, …). */
  method: string;
  /** Who is calling, as the pipeline's `identify` step named it. */
  identity: string;
  /** Transport address of the caller (`ipv4:127.0.0.1:53122`). */
  peer: string;
  /** The caller's `x-request-id` when it sent a usable one, else a fresh UUID. */
  requestId: string;
  facts: CallFacts;
}

/** How a call ended, for the pipeline's `finished` step. */
export interface CallOutcome {
  /** gRPC status code (0 for OK). */
  code: number;
  /** Stable reason string of a refusal (`KEY_NOT_FOUND`, …); absent on success. */
  reason?: string;
  latencyMs: number;
}

/**
 * The steps every call passes through around its handler:
 * identify → admit → handler → finished. Authentication, authorization,
 * quotas and the audit trail plug in here, so the services stay about keys
 * and appliances.
 */
export interface CallPipeline {
  log: Logger;
  /** Opens one span per call when tracing is on (see call-trace.ts); absent when it is off. */
  tracer?: Tracer;
  /** Names the caller from its transport (certificate) and metadata. */
  identify(call: SurfaceCall): string;
  /** Runs before the handler; throws a BrokerError to refuse the call. */
  admit(context: CallContext, request: unknown): void | Promise<void>;
  /** Runs once the call has been answered, allowed or refused. Must not throw. */
  finished(context: CallContext, outcome: CallOutcome): void;
  /** Key-level checks, made by handlers once they know the key. */
  access: KeyAccess;
}

/**
 * The key-level checks handlers make once they know which key a call is
 * about. Each also records the key in the call's facts for the audit trail.
 */
export interface KeyAccess {
  /**
   * Refuses the call (PERMISSION_DENIED) unless the caller may run this
   * method on `keyId` with this encryption context. Handlers call it before
   * the registry is asked anything, so a refusal is the same whether the key
   * exists or not, whatever its usage or state.
   */
  key(context: CallContext, keyId: string, encryptionContext?: Readonly<Record<string, string>>, keyVersion?: number): void;
  /** Whether the caller may see `keyId` through this method (ListKeys filtering). */
  visible(context: CallContext, keyId: string): boolean;
}

/** Records the key a call is about; with two (ReEncrypt) the first, the source, is kept. */
export function recordKey(context: CallContext, keyId: string, keyVersion: number | undefined): void {
  if (context.facts.keyId !== undefined) return;
  context.facts.keyId = keyId;
  if (keyVersion !== undefined) context.facts.keyVersion = keyVersion;
}

/** Key access with no policy (loopback development mode): every key is allowed; facts are still recorded. */
export const unrestrictedKeyAccess: KeyAccess = {
  key(context, keyId, _encryptionContext, keyVersion) {
    recordKey(context, keyId, keyVersion);
  },
  visible: () => true,
};

/** The parts of a grpc-js server call (unary or streaming) that the pipeline reads. */
export type SurfaceCall = Pick<ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'metadata'>;

/** Caller identity when the transport proves none. */
export const anonymousIdentity = 'anonymous';

const requestIdHeader = 'x-request-id';
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** Takes the caller's request id when it is short and plain, else mints one. */
export function requestIdOf(metadata: Metadata): string {
  const [value] = metadata.get(requestIdHeader);
  return typeof value === 'string' && requestIdPattern.test(value) ? value : randomUUID();
}

/** Builds the context of one call before its handler runs. */
export function contextOf(call: SurfaceCall, method: string, deadline: number, pipeline: CallPipeline): CallContext {
  return {
    deadline,
    method,
    identity: pipeline.identify(call),
    peer: call.getPeer(),
    requestId: requestIdOf(call.metadata),
    facts: { appliances: [] },
  };
}

/**
 * The pipeline with no access control: every caller is `anonymous` and
 * every call is admitted. Used only in loopback development mode, when no
 * access policy is configured.
 */
export function openPipeline(log: Logger): CallPipeline {
  return {
    log,
    identify: () => anonymousIdentity,
    admit: () => undefined,
    finished: () => undefined,
    access: unrestrictedKeyAccess,
  };
}
