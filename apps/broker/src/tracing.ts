import { context, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';

/** The `tracing:` section: OpenTelemetry traces, off unless an OTLP endpoint is named. */
export interface TracingSettings {
  /** Full URL spans are POSTed to (OTLP/HTTP JSON, `…/v1/traces`); undefined turns tracing off. */
  tracesUrl: string | undefined;
  /** `service.name` of every span (`OTEL_SERVICE_NAME` overrides). */
  serviceName: string;
  /** Share of new traces recorded, 0 to 1; a caller's sampled `traceparent` is always followed. */
  sampleRatio: number;
}

/** The broker's tracer and the pipeline that exports its spans. */
export interface BrokerTracing {
  /** Undefined when tracing is off: calls then open no spans at all. */
  tracer: Tracer | undefined;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

let contextManagerInstalled = false;

/**
 * Spans follow a call through promises and timers only with a context
 * manager; it is process-wide, so it is installed once, by the first broker
 * that traces. The tracer provider is not registered globally: several
 * brokers in one process (tests, embedders) each keep their own exporter.
 */
function installContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/**
 * Starts tracing as configured. `extraProcessors` (tests, embedders) receive
 * every span too, and turn tracing on even without an OTLP endpoint.
 */
export function startTracing(settings: TracingSettings, extraProcessors: readonly SpanProcessor[] = []): BrokerTracing {
  const processors: SpanProcessor[] = [...extraProcessors];
  if (settings.tracesUrl !== undefined) processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl })));
  if (processors.length === 0) return { tracer: undefined, shutdown: () => Promise.resolve() };
  installContextManager();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: processors,
  });
  return {
    tracer: provider.getTracer('@hsm-broker/broker'),
    shutdown: () => provider.shutdown(),
  };
}

/** The tracer that names nothing: what the fleet uses when the broker does not trace. */
export const noTracer: Tracer = trace.getTracer('@hsm-broker/fleet');
