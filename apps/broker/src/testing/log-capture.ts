import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { BrokerConfig, PinSource } from '../broker-config.js';
import { defaultBackupHsmDir } from '../broker-config.js';
import { createLogger } from '../logger.js';
import type { Logger } from '../logger.js';

const workspaceRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * Where every test broker's log is kept, beside the TAP reports, for the
 * leak scan that closes the integration stage (tools/test/scan-broker-logs.mjs).
 * `HSMB_TEST_LOG_DIR` moves it.
 */
export function brokerLogDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['HSMB_TEST_LOG_DIR'] ?? join(workspaceRoot, 'reports', 'broker-logs');
}

/** Shorter values than this are too common to search for (`'m'`, `'x'`). */
export const shortestSecret = 6;

let sequence = 0;

/**
 * One test broker's log file, at debug level whatever the console shows,
 * and beside it the secrets that broker was given: its PINs and the
 * plaintexts tests sent it (`NAME.secrets`, one base64 value a line, owner-only).
 * The scan reads both; a secret in any log line fails it.
 * @internal
 */
export interface LogCapture {
  readonly file: string;
  readonly log: Logger;
  /** Records values that must never appear in a log line. */
  addSecret(value: string | Uint8Array): void;
  /** Records the PINs of every appliance and backup HSM the broker was configured with. */
  addPinsOf(config: BrokerConfig): void;
}

/** Opens a capture file named after the test file and this process. */
export function openLogCapture(label: string, dir = brokerLogDir()): LogCapture {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  sequence++;
  const base = join(dir, `${label.replace(/[^A-Za-z0-9._-]+/g, '-')}-${String(process.pid)}-${String(sequence)}`);
  const file = `${base}.log`;
  const secretsFile = `${base}.secrets`;
  const seen = new Set<string>();
  const addSecret = (value: string | Uint8Array): void => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    if (bytes.length < shortestSecret) return;
    const encoded = bytes.toString('base64');
    if (seen.has(encoded)) return;
    seen.add(encoded);
    appendFileSync(secretsFile, `${encoded}\n`, { mode: 0o600 });
  };
  return {
    file,
    log: createLogger('debug', pino.destination({ dest: file, sync: true, mkdir: true })),
    addSecret,
    addPinsOf(config) {
      for (const pin of pinsOf(config)) addSecret(pin);
    },
  };
}

function readSource(source: PinSource): string | undefined {
  if ('env' in source) return process.env[source.env];
  return existsSync(source.file) ? readFileSync(source.file, 'utf8').replace(/\r?\n$/, '') : undefined;
}

function pinsOf(config: BrokerConfig): string[] {
  const pins: string[] = [];
  const dirs = [join(config.dataDir, 'secrets'), join(defaultBackupHsmDir(config.dataDir), 'secrets')];
  if (config.backupHsm?.kind === 'local') dirs.push(join(config.backupHsm.dir, 'secrets'));
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).filter((entry) => entry.endsWith('.json'))) {
      try {
        const parsed = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
        for (const value of Object.values(parsed)) if (typeof value === 'string') pins.push(value);
      } catch {
        // Not a PIN file.
      }
    }
  }
  const configured = [...(config.fleet.kind === 'configured' ? config.fleet.appliances : []), ...(config.backupHsm?.kind === 'configured' ? [config.backupHsm.appliance] : [])];
  for (const appliance of configured) {
    for (const source of [appliance.pin, appliance.soPin]) {
      const pin = source ? readSource(source) : undefined;
      if (pin) pins.push(pin);
    }
  }
  return pins;
}

/** Request and response fields that carry a caller's secrets. */
const secretFields = ['plaintext', 'message'];

/** Records the secret fields of a request or response sent through the test clients. */
export function recordSecretFields(capture: LogCapture, payload: unknown): void {
  if (!payload || typeof payload !== 'object') return;
  for (const field of secretFields) {
    const value = (payload as Record<string, unknown>)[field];
    if (value instanceof Uint8Array) capture.addSecret(value);
  }
}
