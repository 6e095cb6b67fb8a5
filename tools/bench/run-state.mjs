// What a bench run has started that must not outlive it: the broker (stopped
// in order on Ctrl-C), the measuring processes (owned-processes.mjs) and the
// temporary data directories, which hold PINs and are removed on every exit.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { signalAll } from './owned-processes.mjs';

/** State the shutdown path needs. */
export const started = { /** @type {Set<string>} */ dataDirs: new Set(), /** @type {any} */ broker: undefined, interrupted: false };

/** A fresh temporary directory, removed when the bench exits. */
export function makeDataDir() {
  const dir = mkdtempSync(join(os.tmpdir(), 'hsmb-bench-'));
  started.dataDirs.add(dir);
  return dir;
}

/**
 * Removes a data directory and the backup HSM the broker keeps beside it
 * (`<dataDir>-backup-hsm`, outside the data directory on purpose).
 * @param {string} dir
 */
export function removeDataDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir.replace(/\/+$/, '')}-backup-hsm`, { recursive: true, force: true });
  started.dataDirs.delete(dir);
}

/**
 * On exit, whatever still runs is killed and the directories removed; on a
 * signal, the broker is stopped in order first.
 * @param {(line: string) => void} progress
 */
export function installShutdown(progress) {
  process.on('exit', () => {
    signalAll('SIGKILL');
    for (const dir of [...started.dataDirs]) removeDataDir(dir);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (started.interrupted) return;
      started.interrupted = true;
      progress(`${signal}: stopping everything the bench started`);
      signalAll('SIGTERM');
      const brokerStopped = started.broker ? started.broker.stop() : Promise.resolve();
      brokerStopped.finally(() => process.exit(130));
    });
  }
}
