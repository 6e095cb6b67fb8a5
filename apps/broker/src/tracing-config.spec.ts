import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './broker-config.js';

const base = { HSMB_DATA_DIR: '/tmp/hsmb-tracing-config' };

function withFile(tracing: unknown): Record<string, string> {
  const file = join(mkdtempSync(join(tmpdir(), 'hsmb-tracing-')), 'broker.yaml');
  writeFileSync(file, JSON.stringify({ tracing }));
  return { ...base, HSMB_CONFIG: file };
}

describe('tracing configuration', () => {
  it('is off by default', () => {
    assert.equal(loadConfig(base).tracing.tracesUrl, undefined);
    assert.equal(loadConfig(base).tracing.serviceName, 'hsm-broker');
    assert.equal(loadConfig(base).tracing.sampleRatio, 1);
  });

  it('honours OTEL_EXPORTER_OTLP_ENDPOINT (a base URL) and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL)', () => {
    assert.equal(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).tracing.tracesUrl, 'http://127.0.0.1:4318/v1/traces');
    assert.equal(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing.tracesUrl, 'http://collector:4318/v1/traces');
    assert.equal(
      loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b:4318/custom' }).tracing.tracesUrl,
      'https://b:4318/custom',
    );
    assert.equal(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' }).tracing.tracesUrl, undefined);
    assert.equal(loadConfig({ ...base, OTEL_SERVICE_NAME: 'payments-broker' }).tracing.serviceName, 'payments-broker');
  });

  it('reads tracing.otlpEndpoint, serviceName and sampleRatio from the file; the environment wins', () => {
    const file = withFile({ otlpEndpoint: 'http://127.0.0.1:4318', serviceName: 'edge', sampleRatio: 0.25 });
    assert.deepEqual(loadConfig(file).tracing, { tracesUrl: 'http://127.0.0.1:4318/v1/traces', serviceName: 'edge', sampleRatio: 0.25 });
    assert.equal(loadConfig({ ...file, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other:4318' }).tracing.tracesUrl, 'http://other:4318/v1/traces');
    assert.throws(() => loadConfig(withFile({ endpoint: 'http://x' })), /tracing\.endpoint: .*unknown setting; known settings are otlpEndpoint, serviceName, sampleRatio/);
    assert.throws(() => loadConfig(withFile({ sampleRatio: 2 })), /tracing\.sampleRatio: 2 is not valid; expected a number from 0 to 1/);
  });

  it('refuses a bad endpoint, an unknown key or a ratio out of range, naming the field', () => {
    assert.throws(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://x:4317' }), (error: unknown) => error instanceof ConfigError && /OTEL_EXPORTER_OTLP_ENDPOINT: "grpc:\/\/x:4317"/.test(error.message));
    assert.throws(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://user:secret@x:4318' }), (error: unknown) => error instanceof ConfigError && !error.message.includes('secret'));
    assert.throws(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }), /OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});
