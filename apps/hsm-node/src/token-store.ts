import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeConfig } from './node-config.js';
import { TokenSession } from './token-session.js';

/** What every PKCS#11 child process of the node gets as its environment: nothing secret. */
export function moduleEnvironment(config: NodeConfig): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SOFTHSM2_CONF: join(config.runDir, 'softhsm2.conf') };
}

/** Writes the SoftHSM configuration pointing at the token volume. */
export function writeSoftHsmConf(config: NodeConfig): void {
  mkdirSync(config.runDir, { recursive: true, mode: 0o700 });
  mkdirSync(config.tokenDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(config.runDir, 'softhsm2.conf'), `directories.tokendir = ${config.tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
}

/** Whether the token volume holds no token yet (first boot, or just zeroized). */
export function tokenDirEmpty(config: NodeConfig): boolean {
  return readdirSync(config.tokenDir).length === 0;
}

/**
 * Initialises the token with the configured label and PINs, in a child
 * process that receives the PINs over IPC (never argv, never its environment).
 */
export async function initializeNodeToken(config: NodeConfig): Promise<void> {
  const session = await TokenSession.open({ role: 'init', modulePath: config.modulePath, label: config.label }, moduleEnvironment(config));
  try {
    await session.call('initializeToken', { soPin: config.soPin, userPin: config.userPin });
  } finally {
    await session.close();
  }
}

/** Deletes every token file: the token and all its keys are gone. */
export function wipeTokenDir(config: NodeConfig): void {
  for (const entry of readdirSync(config.tokenDir)) rmSync(join(config.tokenDir, entry), { recursive: true, force: true });
}

/** The token's serial number, read through a crypto-user session. */
export async function readTokenSerial(config: NodeConfig): Promise<string> {
  const session = await TokenSession.open({ role: 'user', modulePath: config.modulePath, label: config.label, pin: config.userPin }, moduleEnvironment(config));
  try {
    const description = (await session.call('describe', {})) as { serial: string };
    return description.serial;
  } finally {
    await session.close();
  }
}
