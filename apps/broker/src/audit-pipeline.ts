import type { AuditTrail } from './audit-trail.js';
import type { CallPipeline } from './call-pipeline.js';
import { noteRequestKey } from './call-facts.js';

/**
 * Wraps a pipeline so that every call, allowed or refused, becomes one
 * audit record once it is answered. Identification and admission stay the
 * inner pipeline's; the trail only reads the call's context and outcome.
 */
export function auditedPipeline(inner: CallPipeline, trail: AuditTrail): CallPipeline {
  return {
    log: inner.log,
    access: inner.access,
    identify: (call) => inner.identify(call),
    admit: (context, request) => {
      noteRequestKey(context, request);
      return inner.admit(context, request);
    },
    finished: (context, outcome) => {
      try {
        inner.finished(context, outcome);
      } finally {
        const { facts } = context;
        trail.record({
          time: new Date().toISOString(),
          identity: context.identity,
          peer: context.peer,
          operation: context.method,
          ...(facts.keyId === undefined ? {} : { keyId: facts.keyId }),
          ...(facts.keyVersion === undefined ? {} : { keyVersion: facts.keyVersion }),
          appliances: [...facts.appliances],
          code: outcome.code,
          ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
          latencyMs: Math.round(outcome.latencyMs * 1000) / 1000,
          requestId: context.requestId,
          ...(facts.before === undefined ? {} : { before: facts.before }),
          ...(facts.after === undefined ? {} : { after: facts.after }),
        });
      }
    },
  };
}
