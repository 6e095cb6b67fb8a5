import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian's softhsm2 package installs the module. */
export const softhsmModulePath = process.env['HSMB_SOFTHSM_MODULE'] ?? '/usr/lib/softhsm/libsofthsm2.so';

/**
 * A throw-away SoftHSM token directory for tests. SoftHSM reads
 * SOFTHSM2_CONF when the module initialises, so this sets it for the current
 * process; each test file runs in its own process.
 * @internal
 */
export function useTemporarySoftHsm(): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-softhsm-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env['SOFTHSM2_CONF'] = conf;
  return {
    dir,
    [Symbol.dispose]() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
