import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createBrokerClient,
  KeySpec,
  KeyUsage,
  MessageType,
  SigningAlgorithm,
  type BrokerClient,
} from '@hsm-broker/client';
import { BrokerError, codeName } from '@hsm-broker/errors';
import { startBrokerProcess, type BrokerProcess } from './broker-process.js';

// Two real broker processes serving one SoftHSM fleet and one metadata
// store (the same data directory: SQLite in WAL mode and SoftHSM tokens both
// take several processes), and one client balancing over both. One replica
// is SIGKILLed, with its workers, while calls are in flight: not one
// idempotent call may fail, and the survivor must carry the rest.

const loops = 6;
const callsBeforeKill = 120;
const callsAfterKill = 240;

describe('a client balancing over two broker replicas', { timeout: 600_000 }, () => {
  let dataDir: string;
  let replicaA: BrokerProcess;
  let replicaB: BrokerProcess;
  let client: BrokerClient;
  let publicKeyPem: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hsmb-replicas-'));
    // A long reconcile interval: two replicas of today's broker would both
    // run the background repair; this test is about the front door.
    const configFile = join(dataDir, 'broker.yaml');
    writeFileSync(configFile, JSON.stringify({ reconcileIntervalSeconds: 86_400 }), { mode: 0o600 });
    const env = (name: string): Record<string, string> => ({
      HSMB_CONFIG: configFile,
      HSMB_DATA_DIR: dataDir,
      HSMB_LOCAL_FLEET: '3x1',
      HSMB_AUDIT_FILE: join(dataDir, `audit-${name}`, 'audit.log'),
    });
    // The first replica initialises the tokens; the second finds them.
    replicaA = await startBrokerProcess({ env: env('a') });
    const setup = createBrokerClient({ address: replicaA.address, deadlineMs: 60_000 });
    try {
      await setup.createKey({ keyId: 'lb/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
      await setup.createKey({ keyId: 'lb/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY });
      publicKeyPem = (await setup.getPublicKey({ keyId: 'lb/ec' })).publicKeyPem;
    } finally {
      setup.close();
    }
    replicaB = await startBrokerProcess({ env: env('b') });
    client = createBrokerClient({ address: `${replicaA.address},${replicaB.address}`, deadlineMs: 30_000 });
  });

  after(async () => {
    client?.close();
    await replicaA?.stop();
    await replicaB?.stop();
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(`${dataDir}-backup-hsm`, { recursive: true, force: true });
    }
  });

  /** Audit records of one operation on one replica, asked of that replica alone. */
  async function served(address: string, operation: string): Promise<number> {
    const single = createBrokerClient({ address, deadlineMs: 30_000 });
    try {
      return (await single.searchAudit({ filter: { operation }, limit: 1000 })).records.length;
    } finally {
      single.close();
    }
  }

  it('spreads calls over both replicas and loses none when one is killed under load', async () => {
    const failures: string[] = [];
    let succeeded = 0;
    let succeededAfterKill = 0;
    let killed = false;
    let stopLoad = false;

    // Each round: encrypt and decrypt, sign and check the signature with
    // node:crypto, draw random bytes. All idempotent, all retried.
    async function round(): Promise<void> {
      const plaintext = randomBytes(64);
      const { ciphertext } = await client.encrypt({ keyId: 'lb/aes', plaintext });
      const { plaintext: back } = await client.decrypt({ ciphertext });
      assert.deepEqual(Buffer.from(back), plaintext);
      const { signature } = await client.sign({
        keyId: 'lb/ec',
        message: plaintext,
        messageType: MessageType.RAW,
        signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
      });
      assert.ok(cryptoVerify('sha256', plaintext, createPublicKey(publicKeyPem), Buffer.from(signature)));
      await client.generateRandom({ numBytes: 16 });
    }

    async function loop(): Promise<void> {
      while (!stopLoad) {
        const afterKill = killed;
        try {
          await round();
          succeeded += 1;
          if (afterKill) succeededAfterKill += 1;
          if (succeededAfterKill >= callsAfterKill) stopLoad = true;
        } catch (error: unknown) {
          const failure = BrokerError.from(error);
          failures.push(`${codeName(failure.code)}: ${failure.message}`);
          if (failures.length > 20) stopLoad = true;
        }
      }
    }

    const running = Array.from({ length: loops }, () => loop());
    while (succeeded < callsBeforeKill && !stopLoad) await new Promise((resolve) => setTimeout(resolve, 50));
    const encryptsOnA = await served(replicaA.address, 'Encrypt');
    const encryptsOnBBefore = await served(replicaB.address, 'Encrypt');
    await replicaA.kill();
    killed = true;
    await Promise.all(running);

    assert.deepEqual(failures, [], 'no idempotent call failed');
    assert.ok(succeededAfterKill >= callsAfterKill, `rounds after the kill: ${String(succeededAfterKill)}`);
    assert.ok(encryptsOnA > 0, 'replica A served calls before it was killed');
    assert.ok(encryptsOnBBefore > 0, 'replica B served calls before A was killed');
    const encryptsOnBAfter = await served(replicaB.address, 'Encrypt');
    assert.ok(
      encryptsOnBAfter - encryptsOnBBefore >= callsAfterKill,
      `replica B carried the load after the kill (${String(encryptsOnBAfter - encryptsOnBBefore)} encrypts)`,
    );
  });

  it('keeps non-idempotent calls working on the survivor without sending them twice', async () => {
    // Replica A is gone: a CreateKey goes to B once and succeeds there.
    const created = await client.createKey({ keyId: 'lb/after', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    assert.equal(created.keyMetadata?.keyId, 'lb/after');
    assert.equal(await served(replicaB.address, 'CreateKey'), 1);
  });
});
