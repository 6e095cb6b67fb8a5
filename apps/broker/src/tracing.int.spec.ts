import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Metadata, credentials } from '@grpc/grpc-js';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { CryptoServiceClient, FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import type { SignRequest } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** An OTLP/HTTP receiver on loopback: keeps every JSON export it is sent. */
async function otlpReceiver(): Promise<{ url: string; exports: unknown[]; paths: string[]; close(): Promise<void> }> {
  const exports: unknown[] = [];
  const paths: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      paths.push(`${request.method ?? ''} ${request.url ?? ''} ${request.headers['content-type'] ?? ''}`);
      exports.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${String(port)}`, exports, paths, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

function otlpSpans(exports: unknown[]): { spans: OtlpSpan[]; serviceNames: unknown[] } {
  const spans: OtlpSpan[] = [];
  const serviceNames: unknown[] = [];
  for (const body of exports as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] }[]) {
    for (const resourceSpans of body.resourceSpans) {
      serviceNames.push(resourceSpans.resource.attributes.find((attribute) => attribute.key === 'service.name')?.value['stringValue']);
      for (const scope of resourceSpans.scopeSpans) spans.push(...scope.spans);
    }
  }
  return { spans, serviceNames };
}

function otlpAttribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((attribute) => attribute.key === key)?.value;
  return value ? Object.values(value)[0] : undefined;
}

/** Signs with raw grpc-js, sending `traceparent` when given; resolves with the response headers. */
function signWithHeaders(address: string, request: SignRequest, traceparent?: string): Promise<Metadata> {
  const client = new CryptoServiceClient(address, credentials.createInsecure());
  const metadata = new Metadata();
  if (traceparent) metadata.set('traceparent', traceparent);
  return new Promise((resolve, reject) => {
    let headers: Metadata | undefined;
    const call = client.sign(request, metadata, { deadline: Date.now() + 60_000 }, (error) => {
      client.close();
      if (error) reject(error);
      else if (!headers) reject(new Error('no response headers'));
      else resolve(headers);
    });
    call.on('metadata', (received: Metadata) => {
      headers = received;
    });
  });
}

describe('OpenTelemetry traces', { timeout: 600_000 }, () => {
  const memory = new InMemorySpanExporter();
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let t: TestBroker;
  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  let returned: string;
  const signRequest: SignRequest = { keyId: 'trace/ec', message: Buffer.from('traced message'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };

  before(async () => {
    receiver = await otlpReceiver();
    // Two zones, one session each, hedging after 50 ms: a slow hsm-a1 makes every signature two attempts.
    t = await startTestBroker({
      env: { HSMB_LOCAL_FLEET: '2x1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1', HSMB_HEDGE_DELAY_MS: '50', HSMB_MIN_REPLICAS: '2', HSMB_MIN_ZONES: '2' },
      config: { timeouts: { callMs: 10_000 }, routing: { consecutiveFailures: 100, healthIntervalMs: 600_000 }, tracing: { otlpEndpoint: receiver.url, serviceName: 'hsmb-trace-test' } },
      spanProcessors: [new SimpleSpanProcessor(memory)],
    });
    await t.clients.keys.createKey({ keyId: 'trace/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.LATENCY, probability: 0, latencyMs: 3000, durationMs: 0 });
    const headers = await signWithHeaders(t.broker.address, signRequest, `00-${traceId}-${callerSpanId}-01`);
    const [value] = headers.get('traceparent');
    returned = String(value);
    // The hedge's loser finishes later; its span ends when it does.
    await until(() => t.broker.fleet.appliance('hsm-a1').inFlight === 0, 30_000, 'the slow attempt to finish');
    await t.clients.fleet.clearFaults({ applianceId: 'hsm-a1' });
  });

  after(async () => {
    await t.dispose();
    await receiver.close();
  });

  it('continues the caller\'s trace and returns traceparent naming the RPC span', () => {
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(returned);
    assert.ok(match, `returned traceparent ${returned}`);
    assert.equal(match[1], traceId, 'same trace');
    assert.notEqual(match[2], callerSpanId, 'a span of its own');
    const rpc = memory.getFinishedSpans().find((span) => span.spanContext().traceId === traceId && span.name === 'hsmbroker.v1.CryptoService/Sign');
    assert.ok(rpc, `spans: ${memory.getFinishedSpans().map((span) => span.name).join(', ')}`);
    assert.equal(rpc.spanContext().spanId, match[2]);
    assert.equal(rpc.parentSpanContext?.spanId, callerSpanId, 'the RPC span is a child of the caller\'s span');
    assert.equal(rpc.attributes['rpc.grpc.status_code'], 0);
    assert.equal(rpc.attributes['hsmb.key_id'], 'trace/ec');
  });

  it('shows the hedged call as two attempt spans under the RPC span: the slow one and the hedge that answered', () => {
    const spans = memory.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
    const rpc = spans.find((span) => span.name === 'hsmbroker.v1.CryptoService/Sign');
    assert.ok(rpc);
    const attempts = spans.filter((span: ReadableSpan) => span.parentSpanContext?.spanId === rpc.spanContext().spanId && span.name === 'appliance sign');
    assert.deepEqual(
      attempts.map((span) => [span.attributes['hsmb.appliance'], span.attributes['hsmb.hedge'], span.attributes['hsmb.attempt']]).sort(),
      [
        ['hsm-a1', false, 0],
        ['hsm-b1', true, 1],
      ],
    );
    const hedge = attempts.find((span) => span.attributes['hsmb.hedge'] === true);
    assert.equal(hedge?.attributes['hsmb.outcome'], 'answered');
  });

  it('a call without traceparent starts a trace of its own and is told its id', async () => {
    const headers = await signWithHeaders(t.broker.address, signRequest);
    const [value] = headers.get('traceparent');
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(value));
    assert.ok(match, `returned traceparent ${String(value)}`);
    assert.notEqual(match[1], traceId);
    const rpc = memory.getFinishedSpans().find((span) => span.spanContext().traceId === match[1] && span.name === 'hsmbroker.v1.CryptoService/Sign');
    assert.ok(rpc);
    assert.equal(rpc.parentSpanContext, undefined, 'a root span');
  });

  it('exports the same spans over OTLP/HTTP to a real receiver, parent links intact', async () => {
    // Stopping flushes the batch exporter.
    await t.stop();
    assert.ok(receiver.paths.every((path) => path.startsWith('POST /v1/traces application/json')), receiver.paths.join('; '));
    const { spans, serviceNames } = otlpSpans(receiver.exports);
    assert.ok(serviceNames.includes('hsmb-trace-test'), `service names ${serviceNames.join()}`);
    const ours = spans.filter((span) => span.traceId === traceId);
    const rpc = ours.find((span) => span.name === 'hsmbroker.v1.CryptoService/Sign');
    assert.ok(rpc, `exported: ${spans.map((span) => span.name).join(', ')}`);
    assert.equal(rpc.parentSpanId, callerSpanId);
    assert.equal(`00-${rpc.traceId}-${rpc.spanId}-01`, returned);
    const attempts = ours.filter((span) => span.parentSpanId === rpc.spanId);
    assert.deepEqual(attempts.map((span) => otlpAttribute(span, 'hsmb.appliance')).sort(), ['hsm-a1', 'hsm-b1']);
  });
});
