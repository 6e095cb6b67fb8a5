import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Span, Tracer } from '@opentelemetry/api';
import type { CallAttempt } from './routed-call.js';

/**
 * The tracer attempts report to when the fleet is given none: the global
 * one, which records nothing unless the process registered a provider.
 */
export const defaultFleetTracer: Tracer = trace.getTracer('@hsm-broker/fleet');

/**
 * Opens the span of one attempt of a routed call on one appliance, a child
 * of whatever span is active (the RPC's). A retried or hedged call thus
 * shows one child per appliance tried, each with its outcome. Only the
 * OpenTelemetry API is used here: with no SDK behind it, spans cost nothing.
 */
export function startAttemptSpan(tracer: Tracer, op: string, attempt: CallAttempt, index: number): Span {
  return tracer.startSpan(`appliance ${op}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'hsmb.operation': op,
      'hsmb.appliance': attempt.applianceId,
      'hsmb.zone': attempt.zone,
      'hsmb.attempt': index,
      'hsmb.hedge': attempt.hedge,
      'hsmb.panic': attempt.panic,
    },
  });
}

/** Ends an attempt's span with how it ended: answered, or failed with its reason. */
export function endAttemptSpan(span: Span, attempt: CallAttempt): void {
  span.setAttribute('hsmb.outcome', attempt.outcome);
  if (attempt.outcome === 'failed') {
    span.setAttribute('hsmb.reason', attempt.reason ?? 'UNKNOWN');
    span.setStatus({ code: SpanStatusCode.ERROR, message: attempt.reason ?? 'UNKNOWN' });
  }
  span.end();
}
