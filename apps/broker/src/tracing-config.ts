import type { TracingSettings } from './tracing.js';

type Fail = (field: string, value: unknown, allowed: string) => never;

const knownKeys = ['otlpEndpoint', 'serviceName', 'sampleRatio'];

function endpointUrl(field: string, value: unknown, fail: Fail): URL {
  if (typeof value !== 'string') return fail(field, value, 'expected an http:// or https:// URL, e.g. http://127.0.0.1:4318');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(field, value, 'expected an http:// or https:// URL, e.g. http://127.0.0.1:4318');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(field, value, 'expected an http:// or https:// URL (OTLP over HTTP)');
  if (url.username !== '' || url.password !== '') fail(field, '<redacted>', 'credentials do not go in the URL');
  return url;
}

/** `…/v1/traces` under a base endpoint, as the OTLP exporter specification derives it. */
function tracesUnder(base: URL): string {
  return `${base.href.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Reads the `tracing:` section and the standard OpenTelemetry variables.
 * Tracing is off unless an endpoint is named: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
 * (the full URL), else `OTEL_EXPORTER_OTLP_ENDPOINT` or `tracing.otlpEndpoint`
 * (a base URL, `/v1/traces` appended). `OTEL_SDK_DISABLED=true` turns it off.
 */
export function parseTracingSettings(raw: unknown, env: NodeJS.ProcessEnv, fail: Fail): TracingSettings {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) fail('tracing', raw, 'expected a mapping with otlpEndpoint, serviceName, sampleRatio');
  const section = (raw ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(section)) if (!knownKeys.includes(key)) fail(`tracing.${key}`, section[key], `unknown setting; known settings are ${knownKeys.join(', ')}`);
  let tracesUrl: string | undefined;
  const tracesEnv = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
  const baseEnv = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (tracesEnv !== undefined && tracesEnv !== '') tracesUrl = endpointUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', tracesEnv, fail).href;
  else if (baseEnv !== undefined && baseEnv !== '') tracesUrl = tracesUnder(endpointUrl('OTEL_EXPORTER_OTLP_ENDPOINT', baseEnv, fail));
  else if (section['otlpEndpoint'] !== undefined) tracesUrl = tracesUnder(endpointUrl('tracing.otlpEndpoint', section['otlpEndpoint'], fail));
  const disabled = env['OTEL_SDK_DISABLED'];
  if (disabled !== undefined && disabled.trim().toLowerCase() === 'true') tracesUrl = undefined;
  const serviceName = env['OTEL_SERVICE_NAME'] ?? section['serviceName'] ?? 'hsm-broker';
  if (typeof serviceName !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(serviceName)) fail('tracing.serviceName (OTEL_SERVICE_NAME)', serviceName, 'expected 1-128 printable ASCII characters');
  const sampleRatio = section['sampleRatio'] ?? 1;
  if (typeof sampleRatio !== 'number' || !(sampleRatio >= 0 && sampleRatio <= 1)) fail('tracing.sampleRatio', sampleRatio, 'expected a number from 0 to 1');
  return { tracesUrl, serviceName, sampleRatio };
}
