import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createBrokerClient, KeySpec, KeyUsage, type BrokerClient } from '@hsm-broker/client';
import { BrokerError, codeName } from '@hsm-broker/errors';
import { startBrokerProcess, type BrokerProcess } from './broker-process.js';
import { workspaceRoot } from './process-run.js';

// Two broker processes on one PostgreSQL store and one SoftHSM fleet, a
// client balancing over both. The replica that leads the background work is
// SIGKILLed (with its workers) under load: no idempotent call may fail, and
// the survivor must take the leader lock with the next term.

interface PostgresServer {
  url: string;
  stop(): void;
}

/** Terms this replica has announced leading, in order (its JSON log lines, whatever their field order). */
function termsLed(replica: BrokerProcess): number[] {
  const terms: number[] = [];
  for (const line of replica.log().split('\n')) {
    if (!line.includes('this replica now runs background work')) continue;
    try {
      const entry = JSON.parse(line) as { message?: unknown; term?: unknown };
      if (typeof entry.message === 'string' && entry.message.startsWith('this replica now runs background work') && typeof entry.term === 'number') terms.push(entry.term);
    } catch {
      // The first line of the kept tail may be cut.
    }
  }
  return terms;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  // Bounded only so a broken build fails instead of hanging; nothing is asserted on the time.
  for (let i = 0; i < 600 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(condition(), what);
}

describe('killing the leader replica under load', { timeout: 600_000 }, () => {
  let postgres: PostgresServer;
  let dataDir: string;
  let replicas: BrokerProcess[] = [];
  let client: BrokerClient;

  before(async () => {
    // Its own server (the default database is empty): this app does not link the store's client library.
    const module = (await import(pathToFileURL(join(workspaceRoot, 'tools/test/postgres-server.mjs')).href)) as { startPostgres(): Promise<PostgresServer> };
    postgres = await module.startPostgres();
    dataDir = mkdtempSync(join(tmpdir(), 'hsmb-leader-'));
    const configFile = join(dataDir, 'broker.yaml');
    writeFileSync(configFile, JSON.stringify({ reconcileIntervalSeconds: 2, deletionSweepSeconds: 2 }), { mode: 0o600 });
    const env = (name: string): Record<string, string> => ({
      HSMB_CONFIG: configFile,
      HSMB_DATA_DIR: dataDir,
      HSMB_LOCAL_FLEET: '3x1',
      HSMB_WORKERS_PER_APPLIANCE: '1',
      HSMB_STORE: postgres.url,
      HSMB_AUDIT_FILE: join(dataDir, `audit-${name}`, 'audit.log'),
    });
    // The first replica initialises the tokens; the second finds them.
    replicas.push(await startBrokerProcess({ env: env('a') }));
    replicas.push(await startBrokerProcess({ env: env('b') }));
    client = createBrokerClient({ address: replicas.map((replica) => replica.address).join(','), deadlineMs: 30_000 });
    await client.createKey({ keyId: 'leader/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
  });

  after(async () => {
    client?.close();
    for (const replica of replicas) await replica.stop();
    replicas = [];
    postgres?.stop();
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(`${dataDir}-backup-hsm`, { recursive: true, force: true });
    }
  });

  it('moves background work to the survivor and fails no idempotent call', async () => {
    await until(() => replicas.filter((replica) => termsLed(replica).length > 0).length === 1, 'exactly one replica leads');
    const leader = replicas.find((replica) => termsLed(replica).length > 0);
    const survivor = replicas.find((replica) => replica !== leader);
    assert.ok(leader && survivor);
    const oldTerm = Math.max(...termsLed(leader));
    assert.deepEqual(termsLed(survivor), [], 'the other replica does not lead');

    const failures: string[] = [];
    let rounds = 0;
    let roundsAfterTakeover = 0;
    let tookOver = false;
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const plaintext = randomBytes(32);
        try {
          const { ciphertext } = await client.encrypt({ keyId: 'leader/aes', plaintext });
          const { plaintext: back } = await client.decrypt({ ciphertext });
          assert.deepEqual(Buffer.from(back), plaintext);
          rounds++;
          if (tookOver) roundsAfterTakeover++;
        } catch (error: unknown) {
          const failure = BrokerError.from(error);
          failures.push(`${codeName(failure.code)}: ${failure.message}`);
          if (failures.length > 20) stop = true;
        }
      }
    };
    const running = Array.from({ length: 4 }, () => loop());
    await until(() => rounds >= 60 || stop, 'load is running');
    await leader.kill();
    await until(() => termsLed(survivor).length > 0 || stop, 'the survivor takes over the background work');
    tookOver = true;
    await until(() => roundsAfterTakeover >= 100 || stop, 'load continues after the takeover');
    stop = true;
    await Promise.all(running);

    assert.deepEqual(failures, [], 'no idempotent call failed');
    const newTerm = Math.max(...termsLed(survivor));
    assert.ok(newTerm > oldTerm, `terms ${String(oldTerm)} then ${String(newTerm)}`);
    // State changes work on the survivor (sent once, not retried).
    const created = await client.createKey({ keyId: 'leader/after', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    assert.equal(created.keyMetadata?.keyId, 'leader/after');
  });
});
