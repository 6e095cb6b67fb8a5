import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parsePkcs11Uri } from '@hsm-broker/pkcs11';
import type { TokenSelector } from '@hsm-broker/pkcs11';
import { parseAdminSettings } from './admin-config.js';
import type { AdminSettings } from './admin-config.js';
import { parseAuditSettings } from './audit-config.js';
import type { AuditSettings } from './audit-config.js';
import { ConfigError } from './config-error.js';
import { parseKmsSettings } from './kms/kms-config.js';
import type { KmsSettings } from './kms/kms-config.js';
import { parseStoreConfig } from './store-config.js';
import type { StoreConfig } from './store-config.js';
import type { LogLevel } from './logger.js';
import { parseCloneTls, parseCloneUrl } from './remote-appliance-config.js';
import type { CloneTlsFiles } from './remote-appliance-config.js';
import { defaultReceiveLimits } from './request-limits.js';
import { parseTracingSettings } from './tracing-config.js';
import type { TracingSettings } from './tracing.js';
import type { ReceiveLimits } from './request-limits.js';

/** Where a PIN comes from. PINs are never written in the configuration itself. */
export type PinSource = { file: string } | { env: string };

/** An appliance described in the configuration file. */
export interface ConfiguredAppliance {
  id: string;
  zone: string;
  modulePath: string;
  selector: TokenSelector;
  pin: PinSource;
  soPin: PinSource | undefined;
  env: Record<string, string>;
  workers: number;
  /** PKCS#11 sessions per worker process: crypto calls one process runs at once. */
  sessions: number;
  /** https://host:port of the node's clone endpoint (remote appliances). */
  clone: string | undefined;
}

/**
 * Where the embedded backup HSM (its token and its PINs) lives when nothing
 * says: beside the data directory, not in it, so a copy, a snapshot or the
 * loss of the data directory never carries the fleet's backup HSM and its
 * PINs along with the fleet (ADR 0011). A backup HSM made inside the data
 * directory by an older version is kept where it is (moving it silently
 * would orphan every backup made with it); the broker warns about it at
 * start-up.
 */
export function defaultBackupHsmDir(dataDir: string): string {
  const legacy = join(dataDir, 'backup-hsm');
  return existsSync(legacy) ? legacy : `${dataDir.replace(/\/+$/, '')}-backup-hsm`;
}

/** The broker's validated configuration. */
export interface BrokerConfig {
  /** host:port to serve gRPC on. */
  listen: string;
  /** Mutual TLS 1.3: the broker's certificate and key, and the CA every client certificate must chain to. */
  tls: { certFile: string; keyFile: string; clientCaFile: string } | undefined;
  /** The access policy file (grants, roles, quotas); undefined only in loopback development mode. */
  access: { policyFile: string | undefined };
  /** Allows plaintext beyond loopback (with `insecure`); never for production. */
  development: boolean;
  /** How often the policy file and the TLS files are checked for changes. */
  reloadIntervalMs: number;
  /** Where the metadata database and, for the local fleet, tokens and PINs live. */
  dataDir: string;
  /** The key metadata store: the embedded SQLite file in dataDir, or PostgreSQL shared by replicas (HSMB_STORE). */
  store: StoreConfig;
  localZone: string;
  /** Either an embedded SoftHSM fleet of `zones` × `perZone`, or configured appliances. */
  fleet: { kind: 'local'; zones: number; perZone: number; modulePath: string } | { kind: 'configured'; appliances: ConfiguredAppliance[] };
  durability: { minAppliances: number; minZones: number };
  workersPerAppliance: number;
  /** PKCS#11 sessions per worker process (per appliance: `sessions`). */
  sessionsPerWorker: number;
  timeouts: { callMs: number; slowCallMs: number; startMs: number };
  routing: RoutingSettings;
  /** How often pending deletions and due rotations are swept. */
  deletionSweepMs: number;
  /** How often every appliance's key inventory is compared with the registry. */
  reconcileIntervalMs: number;
  /** The HSM that owns the backup key; undefined disables backups. */
  backupHsm: { kind: 'local'; dir: string; modulePath: string } | { kind: 'configured'; appliance: ConfiguredAppliance } | undefined;
  faultInjection: boolean;
  logLevel: LogLevel;
  /** Request size, metadata and stream limits (the `limits:` section). */
  limits: ReceiveLimits;
  /** The audit trail: its file, checkpoints and syslog collectors. */
  audit: AuditSettings;
  /** Mutual TLS towards the appliance nodes' clone endpoints. */
  cloneTls: CloneTlsFiles | undefined;
  /** The AWS KMS-compatible endpoint (the `kms:` section); undefined when off. */
  kms: KmsSettings | undefined;
  /** OpenTelemetry traces (the `tracing:` section); off unless an OTLP endpoint is named. */
  tracing: TracingSettings;
  /** The admin HTTP listener (metrics, health, dashboard); undefined when turned off. */
  admin: AdminSettings;
}

/** Routing and failure-handling settings (the `routing:` section). */
export interface RoutingSettings {
  zonePriority: string[];
  preferLocalZone: boolean;
  consecutiveFailures: number;
  errorThresholdPercentage: number;
  volumeThreshold: number;
  rollingWindowMs: number;
  openMs: number;
  maxOpenMs: number;
  slowStartMs: number;
  healthIntervalMs: number;
  probeTimeoutMs: number;
  retryBudgetRatio: number;
  retryBudgetMinPerSecond: number;
  maxAttempts: number;
  hedgeDelayMs: number;
}

export { ConfigError };

const defaultSoftHsmModule = '/usr/lib/softhsm/libsofthsm2.so';

function fail(field: string, value: unknown, allowed: string): never {
  throw new ConfigError(`${field}: ${JSON.stringify(value)} is not valid; ${allowed}`);
}

function integer(field: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    fail(field, value, `expected an integer from ${String(min)} to ${String(max)}`);
  }
  return n;
}

function text(field: string, value: unknown, pattern = /^.+$/u, allowed = 'expected a non-empty string'): string {
  if (typeof value !== 'string' || !pattern.test(value)) fail(field, value, allowed);
  return value;
}

function bool(field: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false' || value === '') return false;
  return fail(field, value, 'expected true/false or 1/0');
}

function pinSource(field: string, value: unknown): PinSource {
  if (typeof value === 'string') {
    if (value.startsWith('file:')) return { file: value.slice('file:'.length) };
    if (value.startsWith('env:')) return { env: value.slice('env:'.length) };
  }
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record['file'] === 'string') return { file: record['file'] };
    if (typeof record['env'] === 'string') return { env: record['env'] };
  }
  return fail(field, typeof value === 'string' ? '<redacted>' : value, 'expected "file:/path", "env:NAME", {file: ...} or {env: ...}; PINs themselves never go in the configuration');
}

const listenPattern = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const idPattern = /^[A-Za-z0-9_.-]{1,64}$/;

/** Sessions one worker process may hold (each a thread of its pool when calls run at once). */
const maxSessionsPerWorker = 64;

function parseAppliances(value: unknown, workersDefault: number, sessionsDefault: number): ConfiguredAppliance[] {
  if (!Array.isArray(value) || value.length === 0) fail('appliances', value, 'expected a non-empty list');
  return value.map((raw: unknown, index): ConfiguredAppliance => {
    const at = `appliances[${String(index)}]`;
    if (!raw || typeof raw !== 'object') fail(at, raw, 'expected a mapping');
    const entry = raw as Record<string, unknown>;
    const uri = text(`${at}.uri`, entry['uri'], /^pkcs11:/, 'expected an RFC 7512 PKCS#11 URI (pkcs11:token=...)');
    let selector: TokenSelector;
    try {
      selector = parsePkcs11Uri(uri);
    } catch (error: unknown) {
      return fail(`${at}.uri`, uri, error instanceof Error ? error.message : String(error));
    }
    const modulePath = text(`${at}.module`, entry['module'] ?? selector.modulePath, /^\//, 'expected an absolute path to a PKCS#11 module');
    const pinValue = entry['pin'] ?? (selector.pinSource ? `file:${selector.pinSource.replace(/^file:/, '')}` : undefined);
    const envValue = entry['env'] ?? {};
    if (typeof envValue !== 'object' || envValue === null) fail(`${at}.env`, envValue, 'expected a mapping of environment variables');
    const env: Record<string, string> = {};
    for (const [name, v] of Object.entries(envValue as Record<string, unknown>)) env[name] = text(`${at}.env.${name}`, v, /^.*$/u, 'expected a string');
    return {
      id: text(`${at}.id`, entry['id'], idPattern, 'expected 1-64 characters of A-Z a-z 0-9 _ . -'),
      zone: text(`${at}.zone`, entry['zone'], idPattern, 'expected 1-64 characters of A-Z a-z 0-9 _ . -'),
      modulePath,
      selector,
      pin: pinSource(`${at}.pin`, pinValue),
      soPin: entry['soPin'] === undefined ? undefined : pinSource(`${at}.soPin`, entry['soPin']),
      env,
      workers: entry['workers'] === undefined ? workersDefault : integer(`${at}.workers`, entry['workers'], 1, 64),
      sessions: entry['sessions'] === undefined ? sessionsDefault : integer(`${at}.sessions`, entry['sessions'], 1, maxSessionsPerWorker),
      clone: parseCloneUrl(`${at}.clone`, entry['clone']),
    };
  });
}

/**
 * Reads the configuration from the environment and the optional YAML file
 * named by HSMB_CONFIG. Environment variables override the file. Every value
 * is checked here, once; a bad one stops the broker with a message naming it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): BrokerConfig {
  let file: Record<string, unknown> = {};
  const configPath = env['HSMB_CONFIG'];
  if (configPath) {
    let raw: string;
    try {
      raw = readFileSync(configPath, 'utf8');
    } catch (error: unknown) {
      throw new ConfigError(`HSMB_CONFIG: cannot read ${configPath}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const parsed: unknown = parseYaml(raw);
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) fail('HSMB_CONFIG', configPath, 'the file must hold a YAML mapping');
    file = (parsed ?? {}) as Record<string, unknown>;
    const known = new Set(['listen', 'dataDir', 'localZone', 'localFleet', 'appliances', 'durability', 'workersPerAppliance', 'sessionsPerWorker', 'timeouts', 'routing', 'deletionSweepSeconds', 'reconcileIntervalSeconds', 'backupHsm', 'tls', 'insecure', 'development', 'access', 'reloadIntervalMs', 'faultInjection', 'logLevel', 'softhsmModule', 'limits', 'audit', 'cloneTls', 'kms', 'tracing', 'store', 'admin']);
    for (const key of Object.keys(file)) if (!known.has(key)) fail(key, file[key], `unknown setting; known settings are ${[...known].join(', ')}`);
  }
  const pick = (envName: string, fileKey: string): unknown => env[envName] ?? file[fileKey];

  const listen = text('listen (HSMB_LISTEN)', pick('HSMB_LISTEN', 'listen') ?? '127.0.0.1:50051', listenPattern, 'expected host:port, e.g. 127.0.0.1:50051');
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  if (port > 65535) fail('listen (HSMB_LISTEN)', listen, 'the port must be 0 to 65535');
  const tlsRaw = (file['tls'] ?? {}) as Record<string, unknown>;
  const certFile = env['HSMB_SERVER_TLS_CERT'] ?? tlsRaw['cert'];
  const keyFile = env['HSMB_SERVER_TLS_KEY'] ?? tlsRaw['key'];
  const clientCaFile = env['HSMB_SERVER_TLS_CLIENT_CA'] ?? tlsRaw['clientCa'];
  let tls: BrokerConfig['tls'];
  if (certFile !== undefined || keyFile !== undefined || clientCaFile !== undefined) {
    tls = {
      certFile: text('tls.cert (HSMB_SERVER_TLS_CERT)', certFile, /^.+$/u, 'expected the path of a PEM certificate chain'),
      keyFile: text('tls.key (HSMB_SERVER_TLS_KEY)', keyFile, /^.+$/u, 'expected the path of a PEM private key'),
      clientCaFile: text('tls.clientCa (HSMB_SERVER_TLS_CLIENT_CA)', clientCaFile, /^.+$/u, 'expected the path of the PEM CA that signs client certificates; the broker serves mutual TLS only, since callers are named by their certificates'),
    };
  }
  const accessRaw = file['access'] ?? {};
  if (typeof accessRaw !== 'object' || accessRaw === null || Array.isArray(accessRaw)) fail('access', accessRaw, 'expected a mapping with policyFile');
  for (const key of Object.keys(accessRaw)) if (key !== 'policyFile') fail(`access.${key}`, (accessRaw as Record<string, unknown>)[key], 'unknown setting; known settings are policyFile');
  const policyRaw = env['HSMB_POLICY'] ?? (accessRaw as Record<string, unknown>)['policyFile'];
  const policyFile = policyRaw === undefined || policyRaw === '' ? undefined : text('access.policyFile (HSMB_POLICY)', policyRaw, /^.+$/u, 'expected the path of a YAML access policy');
  const host = listen.slice(0, listen.lastIndexOf(':'));
  const loopback = host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
  const insecure = bool('insecure (HSMB_INSECURE)', pick('HSMB_INSECURE', 'insecure') ?? false);
  const development = bool('development (HSMB_DEVELOPMENT)', pick('HSMB_DEVELOPMENT', 'development') ?? false);
  if (!tls && !loopback) {
    if (!insecure) {
      fail('listen (HSMB_LISTEN)', listen, 'serving beyond loopback needs mutual TLS (tls.cert, tls.key and tls.clientCa) and an access policy (access.policyFile)');
    }
    if (!development) fail('insecure (HSMB_INSECURE)', insecure, 'plaintext beyond loopback is for development only: it also needs development: true (HSMB_DEVELOPMENT=1)');
  }
  if (tls && policyFile === undefined) {
    fail('access.policyFile (HSMB_POLICY)', policyFile, 'mutual TLS needs an access policy: without one every certificate holder could do everything; only loopback plaintext runs without a policy, for development');
  }
  if (!loopback && policyFile === undefined && !development) {
    fail('access.policyFile (HSMB_POLICY)', policyFile, 'beyond loopback the broker needs an access policy');
  }
  const dataDirRaw = text('dataDir (HSMB_DATA_DIR)', pick('HSMB_DATA_DIR', 'dataDir') ?? './.data');
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(cwd, dataDirRaw);
  const workersPerAppliance = integer('workersPerAppliance (HSMB_WORKERS_PER_APPLIANCE)', pick('HSMB_WORKERS_PER_APPLIANCE', 'workersPerAppliance') ?? 2, 1, 64);
  const sessionsPerWorker = integer('sessionsPerWorker (HSMB_SESSIONS_PER_WORKER)', pick('HSMB_SESSIONS_PER_WORKER', 'sessionsPerWorker') ?? 1, 1, maxSessionsPerWorker);
  const logLevel = text('logLevel (HSMB_LOG_LEVEL)', pick('HSMB_LOG_LEVEL', 'logLevel') ?? 'info', /^(debug|info|warn|error)$/, 'expected debug, info, warn or error') as LogLevel;

  let fleet: BrokerConfig['fleet'];
  let localZoneDefault = 'az-a';
  if (file['appliances'] !== undefined && env['HSMB_LOCAL_FLEET'] === undefined) {
    const appliances = parseAppliances(file['appliances'], workersPerAppliance, sessionsPerWorker);
    const ids = new Set<string>();
    for (const appliance of appliances) {
      if (ids.has(appliance.id)) fail('appliances', appliance.id, 'appliance ids must be unique');
      ids.add(appliance.id);
    }
    fleet = { kind: 'configured', appliances };
    localZoneDefault = appliances[0]?.zone ?? 'az-a';
  } else {
    const shape = text('localFleet (HSMB_LOCAL_FLEET)', pick('HSMB_LOCAL_FLEET', 'localFleet') ?? '3x1', /^\d+x\d+$/, 'expected ZONESxPER_ZONE, e.g. 3x1');
    const [zones, perZone] = shape.split('x').map(Number) as [number, number];
    if (zones < 1 || zones > 26 || perZone < 1 || perZone > 16) fail('localFleet (HSMB_LOCAL_FLEET)', shape, 'zones must be 1 to 26 and appliances per zone 1 to 16');
    const modulePath = text('softhsmModule (HSMB_SOFTHSM_MODULE)', pick('HSMB_SOFTHSM_MODULE', 'softhsmModule') ?? defaultSoftHsmModule, /^\//, 'expected an absolute path');
    fleet = { kind: 'local', zones, perZone, modulePath };
  }
  const localZone = text('localZone (HSMB_LOCAL_ZONE)', pick('HSMB_LOCAL_ZONE', 'localZone') ?? localZoneDefault, idPattern, 'expected a zone name');

  let backupHsm: BrokerConfig['backupHsm'];
  const backupRaw = file['backupHsm'];
  if (backupRaw !== undefined && (typeof backupRaw !== 'object' || backupRaw === null)) fail('backupHsm', backupRaw, 'expected a mapping');
  const backupEntry = (backupRaw ?? {}) as Record<string, unknown>;
  const softhsmModule = text('softhsmModule (HSMB_SOFTHSM_MODULE)', pick('HSMB_SOFTHSM_MODULE', 'softhsmModule') ?? defaultSoftHsmModule, /^\//, 'expected an absolute path');
  if (backupEntry['uri'] !== undefined) {
    const [appliance] = parseAppliances([{ id: 'backup-hsm', zone: 'backup', ...backupEntry }], 1, 1);
    backupHsm = appliance ? { kind: 'configured', appliance } : undefined;
    if (!backupHsm?.appliance.soPin) fail('backupHsm.soPin', undefined, 'the backup HSM needs a security-officer PIN source');
  } else if (env['HSMB_BACKUP_HSM_DIR'] !== undefined || backupEntry['dir'] !== undefined || fleet.kind === 'local') {
    const dirRaw = text('backupHsm.dir (HSMB_BACKUP_HSM_DIR)', env['HSMB_BACKUP_HSM_DIR'] ?? backupEntry['dir'] ?? defaultBackupHsmDir(dataDir));
    backupHsm = { kind: 'local', dir: isAbsolute(dirRaw) ? dirRaw : resolve(cwd, dirRaw), modulePath: softhsmModule };
  }

  const durabilityRaw = (file['durability'] ?? {}) as Record<string, unknown>;
  const durability = {
    minAppliances: integer('durability.minAppliances (HSMB_MIN_REPLICAS)', env['HSMB_MIN_REPLICAS'] ?? durabilityRaw['minAppliances'] ?? 2, 1, 64),
    minZones: integer('durability.minZones (HSMB_MIN_ZONES)', env['HSMB_MIN_ZONES'] ?? durabilityRaw['minZones'] ?? 2, 1, 26),
  };
  const timeoutsRaw = (file['timeouts'] ?? {}) as Record<string, unknown>;
  const timeouts = {
    callMs: integer('timeouts.callMs', timeoutsRaw['callMs'] ?? 2000, 50, 600000),
    slowCallMs: integer('timeouts.slowCallMs', timeoutsRaw['slowCallMs'] ?? 120000, 1000, 3600000),
    startMs: integer('timeouts.startMs', timeoutsRaw['startMs'] ?? 15000, 500, 600000),
  };
  const routingRaw = (file['routing'] ?? {}) as Record<string, unknown>;
  const ratio = routingRaw['retryBudgetRatio'] ?? 0.2;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) fail('routing.retryBudgetRatio', ratio, 'expected a number from 0 to 1');
  const zonePriority = routingRaw['zonePriority'] ?? [];
  if (!Array.isArray(zonePriority) || !zonePriority.every((zone) => typeof zone === 'string' && idPattern.test(zone))) {
    fail('routing.zonePriority', zonePriority, 'expected a list of zone names');
  }
  const routing: RoutingSettings = {
    zonePriority: zonePriority as string[],
    preferLocalZone: bool('routing.preferLocalZone', routingRaw['preferLocalZone'] ?? true),
    consecutiveFailures: integer('routing.consecutiveFailures', routingRaw['consecutiveFailures'] ?? 5, 1, 1000),
    errorThresholdPercentage: integer('routing.errorThresholdPercentage', routingRaw['errorThresholdPercentage'] ?? 50, 1, 100),
    volumeThreshold: integer('routing.volumeThreshold', routingRaw['volumeThreshold'] ?? 20, 1, 100000),
    rollingWindowMs: integer('routing.rollingWindowMs', routingRaw['rollingWindowMs'] ?? 10000, 1000, 600000),
    openMs: integer('routing.openMs', routingRaw['openMs'] ?? 1000, 50, 600000),
    maxOpenMs: integer('routing.maxOpenMs', routingRaw['maxOpenMs'] ?? 30000, 50, 3600000),
    slowStartMs: integer('routing.slowStartMs', routingRaw['slowStartMs'] ?? 5000, 0, 600000),
    healthIntervalMs: integer('routing.healthIntervalMs', routingRaw['healthIntervalMs'] ?? 1000, 50, 600000),
    probeTimeoutMs: integer('routing.probeTimeoutMs', routingRaw['probeTimeoutMs'] ?? 1000, 10, 600000),
    retryBudgetRatio: ratio,
    retryBudgetMinPerSecond: integer('routing.retryBudgetMinPerSecond', routingRaw['retryBudgetMinPerSecond'] ?? 10, 0, 100000),
    maxAttempts: integer('routing.maxAttempts', routingRaw['maxAttempts'] ?? 3, 1, 10),
    hedgeDelayMs: integer('routing.hedgeDelayMs (HSMB_HEDGE_DELAY_MS)', env['HSMB_HEDGE_DELAY_MS'] ?? routingRaw['hedgeDelayMs'] ?? 0, 0, 60000),
  };
  const limitsRaw = (file['limits'] ?? {}) as Record<string, unknown>;
  if (typeof limitsRaw !== 'object' || Array.isArray(limitsRaw)) fail('limits', limitsRaw, 'expected a mapping');
  for (const key of Object.keys(limitsRaw)) if (!(key in defaultReceiveLimits)) fail(`limits.${key}`, limitsRaw[key], `unknown setting; known settings are ${Object.keys(defaultReceiveLimits).join(', ')}`);
  const limits: ReceiveLimits = {
    // At least 1 MiB so a small fleet's backup fits; at most what grpc-js can address.
    maxBackupBytes: integer('limits.maxBackupBytes', limitsRaw['maxBackupBytes'] ?? defaultReceiveLimits.maxBackupBytes, 1024 * 1024, 2 ** 31 - 2048),
    maxConcurrentStreams: integer('limits.maxConcurrentStreams', limitsRaw['maxConcurrentStreams'] ?? defaultReceiveLimits.maxConcurrentStreams, 1, 10000),
    maxMetadataBytes: integer('limits.maxMetadataBytes', limitsRaw['maxMetadataBytes'] ?? defaultReceiveLimits.maxMetadataBytes, 1024, 65536),
    maxMetadataEntries: integer('limits.maxMetadataEntries', limitsRaw['maxMetadataEntries'] ?? defaultReceiveLimits.maxMetadataEntries, 8, 128),
  };
  if (routing.maxOpenMs < routing.openMs) fail('routing.maxOpenMs', routing.maxOpenMs, `must be at least routing.openMs (${String(routing.openMs)})`);
  const store = parseStoreConfig(pick('HSMB_STORE', 'store'));
  const kms = parseKmsSettings(file['kms'], env, cwd, tls !== undefined, fail);
  // KMS aliases live in the embedded store only: replicas sharing PostgreSQL
  // would each resolve alias/... from their own copy, to different keys.
  if (kms && store.kind === 'postgres') fail('kms', kms.listen, 'the KMS endpoint keeps its aliases in the embedded store and cannot yet run with a PostgreSQL store (HSMB_STORE); serve KMS from a broker on the embedded store');
  return {
    listen,
    tls,
    dataDir,
    store,
    localZone,
    fleet,
    durability,
    workersPerAppliance,
    sessionsPerWorker,
    timeouts,
    routing,
    deletionSweepMs: integer('deletionSweepSeconds', file['deletionSweepSeconds'] ?? 60, 1, 86400) * 1000,
    reconcileIntervalMs: integer('reconcileIntervalSeconds', file['reconcileIntervalSeconds'] ?? 60, 1, 86400) * 1000,
    backupHsm,
    access: { policyFile: policyFile === undefined ? undefined : isAbsolute(policyFile) ? policyFile : resolve(cwd, policyFile) },
    development,
    reloadIntervalMs: integer('reloadIntervalMs', file['reloadIntervalMs'] ?? 1000, 50, 600000),
    faultInjection: bool('faultInjection (HSMB_FAULT_INJECTION)', pick('HSMB_FAULT_INJECTION', 'faultInjection') ?? false),
    logLevel,
    limits,
    audit: parseAuditSettings(file['audit'], env, dataDir, cwd, fail),
    admin: parseAdminSettings(file['admin'], env, fail),
    cloneTls: parseCloneTls(file['cloneTls'], fleet.kind === 'configured' && fleet.appliances.some((appliance) => appliance.clone !== undefined)),
    kms,
    tracing: parseTracingSettings(file['tracing'], env, fail),
  };
}
