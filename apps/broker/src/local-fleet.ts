import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplianceWorker } from '@hsm-broker/fleet';
import type { ApplianceConfig } from '@hsm-broker/fleet';
import type { Logger } from './logger.js';

/** PINs of one local appliance, stored in a file only the owner can read. */
interface LocalPins {
  soPin: string;
  userPin: string;
}

/** What to provision. */
export interface LocalFleetShape {
  dataDir: string;
  zones: number;
  perZone: number;
  modulePath: string;
  workersPerAppliance: number;
  sessionsPerWorker: number;
  startTimeoutMs: number;
}

/** Zone names of the embedded fleet: az-a, az-b, … */
export function localZoneName(index: number): string {
  return `az-${String.fromCharCode('a'.charCodeAt(0) + index)}`;
}

function readPins(path: string): LocalPins {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LocalPins>;
  if (typeof parsed.soPin !== 'string' || typeof parsed.userPin !== 'string') {
    throw new Error(`${path} does not hold soPin and userPin`);
  }
  return { soPin: parsed.soPin, userPin: parsed.userPin };
}

/** One local SoftHSM token: where it lives and how it is named. */
interface LocalToken {
  id: string;
  zone: string;
  /** Holds tokens/ and softhsm2.conf. */
  dir: string;
  secretsDir: string;
  modulePath: string;
  workers: number;
  sessions: number;
  startTimeoutMs: number;
}

function secretsDirIn(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * Lays out one SoftHSM token: its directory and SOFTHSM2_CONF, PINs
 * generated on first use and kept in an owner-only file. A token directory
 * found empty (a wiped appliance) is initialised again with the same PINs.
 */
async function provisionLocalToken(token: LocalToken, log: Logger): Promise<ApplianceConfig> {
  const tokenDir = join(token.dir, 'tokens');
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  const conf = join(token.dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  const pinFile = join(token.secretsDir, `${token.id}.json`);
  let pins: LocalPins;
  if (existsSync(pinFile)) {
    pins = readPins(pinFile);
  } else {
    pins = { soPin: randomBytes(18).toString('base64url'), userPin: randomBytes(18).toString('base64url') };
    writeFileSync(pinFile, JSON.stringify(pins), { mode: 0o600, flag: 'wx' });
  }
  const env = { SOFTHSM2_CONF: conf };
  if (readdirSync(tokenDir).length === 0) {
    await initializeLocalToken(token.id, token.modulePath, env, pins, token.startTimeoutMs);
    log.info('initialised local token', { token: token.id, zone: token.zone, tokenDir });
  }
  return {
    id: token.id,
    zone: token.zone,
    modulePath: token.modulePath,
    selector: { token: token.id },
    userPin: pins.userPin,
    soPin: pins.soPin,
    env,
    workers: token.workers,
    sessionsPerWorker: token.sessions,
  };
}

/** Lays out the embedded SoftHSM fleet under the data directory, one token per appliance. */
export async function provisionLocalFleet(shape: LocalFleetShape, log: Logger): Promise<ApplianceConfig[]> {
  const secretsDir = secretsDirIn(join(shape.dataDir, 'secrets'));
  const appliances: ApplianceConfig[] = [];
  for (let z = 0; z < shape.zones; z++) {
    const zone = localZoneName(z);
    for (let n = 1; n <= shape.perZone; n++) {
      const id = `hsm-${zone.slice(3)}${String(n)}`;
      const dir = join(shape.dataDir, 'fleet', id);
      appliances.push(
        await provisionLocalToken(
          { id, zone, dir, secretsDir, modulePath: shape.modulePath, workers: shape.workersPerAppliance, sessions: shape.sessionsPerWorker, startTimeoutMs: shape.startTimeoutMs },
          log,
        ),
      );
    }
  }
  return appliances;
}

/**
 * The embedded backup HSM: a SoftHSM token in a directory of its own,
 * outside the fleet, with its own PINs. Keep it apart from the data
 * directory in real use (HSMB_BACKUP_HSM_DIR): it is what survives the loss
 * of every fleet token.
 */
export function provisionLocalBackupHsm(dir: string, modulePath: string, startTimeoutMs: number, log: Logger): Promise<ApplianceConfig> {
  const secretsDir = secretsDirIn(join(dir, 'secrets'));
  return provisionLocalToken({ id: 'hsmb-backup', zone: 'backup', dir, secretsDir, modulePath, workers: 1, sessions: 1, startTimeoutMs }, log);
}

/** Initialises a token in a worker process of its own, so PINs travel only over IPC. */
export async function initializeLocalToken(id: string, modulePath: string, env: Record<string, string>, pins: LocalPins, startTimeoutMs: number): Promise<void> {
  const worker = await ApplianceWorker.start({ applianceId: id, modulePath, selector: {}, role: 'none', env, startTimeoutMs });
  try {
    await worker.call('initializeToken', { label: id, soPin: pins.soPin, userPin: pins.userPin }, 60000);
  } finally {
    await worker.stop();
  }
}
