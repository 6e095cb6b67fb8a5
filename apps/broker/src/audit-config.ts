import { dirname, isAbsolute, join, resolve } from 'node:path';

/** TLS towards a syslog collector. */
export interface SyslogTlsSettings {
  /** CA bundle that signed the collector's certificate; the system CAs when absent. */
  caFile: string | undefined;
  /** Client certificate and key, for collectors that want mutual TLS. */
  certFile: string | undefined;
  keyFile: string | undefined;
  /** Name the collector's certificate must carry; the address's host when absent. */
  serverName: string | undefined;
}

/** One syslog collector (an entry of `audit.syslog`). */
export interface SyslogCollectorSettings {
  /** host:port of an RFC 5424 receiver over TCP with octet-counting framing (RFC 6587). */
  address: string;
  host: string;
  port: number;
  tls: SyslogTlsSettings | undefined;
  /** Most bytes buffered on disk while the collector is unreachable; beyond it records are dropped and counted. */
  bufferBytes: number;
}

/** The `audit:` section, validated. */
export interface AuditSettings {
  /** The file being written; rotated files sit beside it as `FILE.<first seq>`. */
  file: string;
  /** The file is rotated once it would grow past this many bytes. */
  rotateBytes: number;
  /** How often a signed checkpoint is written (when records were added since the last one). */
  checkpointMs: number;
  /** Where undelivered syslog records wait, one file per collector. */
  bufferDir: string;
  syslog: SyslogCollectorSettings[];
}

/** How the configuration loader reports a bad value (it names the field, the value and what is allowed). */
export type ConfigFailure = (field: string, value: unknown, allowed: string) => never;

const hostPortPattern = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

function mapping(field: string, value: unknown, fail: ConfigFailure): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, value, 'expected a mapping');
  return value as Record<string, unknown>;
}

function whole(field: string, value: unknown, min: number, max: number, fail: ConfigFailure): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) fail(field, value, `expected an integer from ${String(min)} to ${String(max)}`);
  return n;
}

function path(field: string, value: unknown, cwd: string, fail: ConfigFailure): string {
  if (typeof value !== 'string' || value === '') fail(field, value, 'expected a file path');
  return isAbsolute(value) ? value : resolve(cwd, value);
}

function optionalPath(field: string, value: unknown, cwd: string, fail: ConfigFailure): string | undefined {
  return value === undefined ? undefined : path(field, value, cwd, fail);
}

function hostName(field: string, value: unknown, fail: ConfigFailure): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(value)) fail(field, value, 'expected a DNS name');
  return value;
}

function tlsOf(field: string, value: unknown, cwd: string, fail: ConfigFailure): SyslogTlsSettings | undefined {
  if (value === undefined || value === false) return undefined;
  const raw = value === true ? {} : mapping(field, value, fail);
  const known = new Set(['ca', 'cert', 'key', 'serverName']);
  for (const key of Object.keys(raw)) if (!known.has(key)) fail(`${field}.${key}`, raw[key], `unknown setting; known settings are ${[...known].join(', ')}`);
  const tls = {
    caFile: optionalPath(`${field}.ca`, raw['ca'], cwd, fail),
    certFile: optionalPath(`${field}.cert`, raw['cert'], cwd, fail),
    keyFile: optionalPath(`${field}.key`, raw['key'], cwd, fail),
    serverName: raw['serverName'] === undefined ? undefined : hostName(`${field}.serverName`, raw['serverName'], fail),
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) fail(`${field}.cert`, raw['cert'], 'a client certificate needs both cert and key');
  return tls;
}

function collectorsOf(value: unknown, cwd: string, fail: ConfigFailure): SyslogCollectorSettings[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail('audit.syslog', value, 'expected a list of collectors ({ address: host:port, tls: ... })');
  const collectors = value.map((entry: unknown, index): SyslogCollectorSettings => {
    const at = `audit.syslog[${String(index)}]`;
    const raw = mapping(at, entry, fail);
    const known = new Set(['address', 'tls', 'bufferBytes']);
    for (const key of Object.keys(raw)) if (!known.has(key)) fail(`${at}.${key}`, raw[key], `unknown setting; known settings are ${[...known].join(', ')}`);
    const address = raw['address'];
    const match = typeof address === 'string' ? hostPortPattern.exec(address) : null;
    if (typeof address !== 'string' || !match?.[1] || !match[2] || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      fail(`${at}.address`, address, 'expected host:port with a port from 1 to 65535, e.g. siem.internal:6514');
    }
    return {
      address,
      host: match[1].replace(/^\[|\]$/g, ''),
      port: Number(match[2]),
      tls: tlsOf(`${at}.tls`, raw['tls'], cwd, fail),
      bufferBytes: raw['bufferBytes'] === undefined ? 64 * 1024 * 1024 : whole(`${at}.bufferBytes`, raw['bufferBytes'], 4096, 64 * 1024 * 1024 * 1024, fail),
    };
  });
  const seen = new Set<string>();
  for (const collector of collectors) {
    if (seen.has(collector.address)) fail('audit.syslog', collector.address, 'each collector address may appear once');
    seen.add(collector.address);
  }
  return collectors;
}

/**
 * Parses the `audit:` section of HSMB_CONFIG. `HSMB_AUDIT_FILE` overrides
 * the file; by default the trail lives under the data directory, so it is
 * on unless configured elsewhere.
 */
export function parseAuditSettings(value: unknown, env: NodeJS.ProcessEnv, dataDir: string, cwd: string, fail: ConfigFailure): AuditSettings {
  const raw = mapping('audit', value, fail);
  const known = new Set(['file', 'syslog', 'rotateBytes', 'checkpointSeconds', 'bufferDir']);
  for (const key of Object.keys(raw)) if (!known.has(key)) fail(`audit.${key}`, raw[key], `unknown setting; known settings are ${[...known].join(', ')}`);
  const file = path('audit.file (HSMB_AUDIT_FILE)', env['HSMB_AUDIT_FILE'] ?? raw['file'] ?? join(dataDir, 'audit', 'audit.log'), cwd, fail);
  return {
    file,
    rotateBytes: whole('audit.rotateBytes', raw['rotateBytes'] ?? 16 * 1024 * 1024, 4096, 64 * 1024 * 1024 * 1024, fail),
    checkpointMs: whole('audit.checkpointSeconds', raw['checkpointSeconds'] ?? 60, 1, 86400, fail) * 1000,
    bufferDir: path('audit.bufferDir', raw['bufferDir'] ?? join(dirname(file), 'syslog-buffer'), cwd, fail),
    syslog: collectorsOf(raw['syslog'], cwd, fail),
  };
}
