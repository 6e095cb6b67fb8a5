import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../config-error.js';
import { defaultBackupHsmDir } from '../broker-config.js';
import { startTestBroker } from '../testing/broker-harness.js';

describe('KMS endpoint start-up refusals', { timeout: 600_000 }, () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) {
      rmSync(dir, { recursive: true, force: true });
      rmSync(defaultBackupHsmDir(dir), { recursive: true, force: true });
    }
  });

  const start = (secretFile: string): Promise<unknown> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsmb-kms-start-'));
    dirs.push(dataDir);
    return startTestBroker({
      dataDir,
      env: { HSMB_KMS_LISTEN: '127.0.0.1:0' },
      config: { kms: { region: 'eu-west-1', account: '111122223333', credentials: [{ accessKeyId: 'AKIAVPCAPAYMENTS', secretFile, identity: 'spiffe://corp/vpc-a/payments' }] } },
    });
  };

  it('an unreadable secret file stops the broker, naming the field, and leaves nothing running', async () => {
    await assert.rejects(start('/nonexistent/vpc-a.secret'), (error: unknown) => error instanceof ConfigError && /^kms\.credentials\[0\]\.secretFile: cannot read the secret file \/nonexistent\/vpc-a\.secret/.test(error.message));
  });

  it('a weak secret stops the broker without showing the secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-kms-weak-'));
    dirs.push(dir);
    const file = join(dir, 'weak.secret');
    writeFileSync(file, 'hunter2\n', { mode: 0o600 });
    await assert.rejects(start(file), (error: unknown) => error instanceof ConfigError && /at least 16 characters/.test(error.message) && !error.message.includes('hunter2'));
  });
});
