import { Metadata } from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context as otelContext, trace } from '@opentelemetry/api';
import type { Context, Span, TextMapGetter, TextMapSetter, Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { CallContext, SurfaceCall } from './call-pipeline.js';
import { withCallScope } from './logger.js';

/** The W3C trace context header a caller sends and gets back. */
export const traceparentHeader = 'traceparent';

const propagator = new W3CTraceContextPropagator();

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((value): value is string => typeof value === 'string');
    return values.length === 0 ? undefined : values;
  },
};

const metadataSetter: TextMapSetter<Metadata> = {
  set: (metadata, key, value) => metadata.set(key, value),
};

/** The trace context a caller sent in its gRPC metadata (`traceparent`, `tracestate`), or none. */
export function incomingTraceContext(metadata: Metadata): Context {
  return propagator.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** One call's span and log scope, from the moment its context is known to its answer. */
export interface CallTrace {
  /** Runs `body` inside the call: its logs carry the request id, its appliance attempts become child spans. */
  run<T>(body: () => T): T;
  /** Headers for the caller: `traceparent` naming this call's span; undefined when tracing is off. */
  responseMetadata(): Metadata | undefined;
  /** Ends the span with the call's gRPC status and refusal reason. */
  end(code: number, reason?: string): void;
}

/**
 * Opens the span of one RPC (kind SERVER, named `package.Service/Method` as
 * OpenTelemetry's RPC conventions ask), a child of the caller's
 * `traceparent` when it sent one. Without a tracer only the log scope is set.
 */
export function beginCallTrace(tracer: Tracer | undefined, call: SurfaceCall & { getPath?: () => string }, context: CallContext): CallTrace {
  const scope = { requestId: context.requestId, method: context.method };
  if (!tracer) {
    return { run: (body) => withCallScope(scope, body), responseMetadata: () => undefined, end: () => undefined };
  }
  const path = typeof call.getPath === 'function' ? call.getPath().replace(/^\//, '') : context.method;
  const service = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : 'hsmbroker.v1';
  const parent = incomingTraceContext(call.metadata);
  const span: Span = tracer.startSpan(
    path,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': service,
        'rpc.method': context.method,
        'hsmb.request_id': context.requestId,
        'hsmb.identity': context.identity,
      },
    },
    parent,
  );
  const active = trace.setSpan(parent, span);
  let ended = false;
  return {
    run: (body) => otelContext.with(active, () => withCallScope(scope, body)),
    responseMetadata() {
      const headers = new Metadata();
      propagator.inject(active, headers, metadataSetter);
      return headers;
    },
    end(code, reason) {
      if (ended) return;
      ended = true;
      span.setAttribute('rpc.grpc.status_code', code);
      if (context.facts.keyId !== undefined) span.setAttribute('hsmb.key_id', context.facts.keyId);
      if (context.facts.keyVersion !== undefined) span.setAttribute('hsmb.key_version', context.facts.keyVersion);
      if (context.facts.appliances.length > 0) span.setAttribute('hsmb.appliances', context.facts.appliances);
      if (reason !== undefined) span.setAttribute('hsmb.reason', reason);
      // Caller errors are the caller's: only server-side failures mark the span as an error.
      if ([2, 4, 12, 13, 14, 15].includes(code)) span.setStatus({ code: SpanStatusCode.ERROR, ...(reason === undefined ? {} : { message: reason }) });
      span.end();
    },
  };
}
