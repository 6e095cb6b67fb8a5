import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrokerUnderTest } from './broker-under-test.js';
import { runProcess, type ProcessResult } from './process-run.js';

/** The SoftHSM module the embedded fleet uses (the broker's default). */
const softHsmModule = '/usr/lib/softhsm/libsofthsm2.so';

/**
 * Runs OpenSC's `pkcs11-tool`, logged in as the user, against the SoftHSM
 * token behind one appliance of a {@link BrokerUnderTest}: what an operator
 * (or an accident) does to an HSM behind the broker's back, with a tool that
 * shares no code with ours. Relies on the embedded fleet's layout: the token
 * of appliance `id` is configured by `fleet/<id>/softhsm2.conf` under the
 * data directory, labelled `<id>`, with its PINs in `secrets/<id>.json`.
 */
export function runPkcs11Tool(target: BrokerUnderTest, applianceId: string, args: readonly string[]): Promise<ProcessResult> {
  const pins = JSON.parse(readFileSync(join(target.dataDir, 'secrets', `${applianceId}.json`), 'utf8')) as {
    userPin: string;
  };
  return runProcess(
    'pkcs11-tool',
    ['--module', softHsmModule, '--token-label', applianceId, '--login', '--pin', pins.userPin, ...args],
    { env: { SOFTHSM2_CONF: join(target.dataDir, 'fleet', applianceId, 'softhsm2.conf') } },
  );
}
