import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createBrokerClient,
  KeySpec,
  KeyState,
  KeyUsage,
  MacAlgorithm,
  MessageType,
  SigningAlgorithm,
  type BrokerClient,
  type KeyMetadata,
} from '@hsm-broker/client';
import { BrokerError, Code, codeName } from '@hsm-broker/errors';
import { startBrokerProcess, type BrokerProcess } from './broker-process.js';
import { runHsmctl } from './hsmctl-run.js';

// The metadata store is destroyed under a fleet that still holds every key.
// `hsmctl registry rebuild`, against the broker running on the empty store,
// must bring back ids, specs, usages, versions and replica locations from
// the appliances alone; rebuilt keys refuse use until enabled, and then
// decrypt the old ciphertexts and verify the old signatures.

describe('hsmctl registry rebuild after the metadata store is lost', { timeout: 600_000 }, () => {
  let dataDir: string;
  let broker: BrokerProcess;
  let client: BrokerClient;
  const plaintexts = [randomBytes(48), randomBytes(48)];
  const ciphertexts: Buffer[] = [];
  const message = Buffer.from('signed before the store was lost');
  let signature: Buffer;
  let publicKeyPem: string;
  let mac: Buffer;
  const before_: Record<string, KeyMetadata> = {};

  const env = (): Record<string, string> => ({
    HSMB_CONFIG: join(dataDir, 'broker.yaml'),
    HSMB_DATA_DIR: dataDir,
    HSMB_LOCAL_FLEET: '3x1',
  });

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hsmb-rebuild-'));
    writeFileSync(join(dataDir, 'broker.yaml'), JSON.stringify({ reconcileIntervalSeconds: 86_400 }), { mode: 0o600 });
    broker = await startBrokerProcess({ env: env() });
    client = createBrokerClient({ address: broker.address, deadlineMs: 120_000 });
    await client.createKey({ keyId: 'rb/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: 'orders', labels: { team: 'a' } });
    ciphertexts.push(Buffer.from((await client.encrypt({ keyId: 'rb/aes', plaintext: plaintexts[0] })).ciphertext));
    await client.rotateKey({ keyId: 'rb/aes' });
    ciphertexts.push(Buffer.from((await client.encrypt({ keyId: 'rb/aes', plaintext: plaintexts[1] })).ciphertext));
    await client.createKey({ keyId: 'rb/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY });
    signature = Buffer.from(
      (await client.sign({ keyId: 'rb/ec', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 })).signature,
    );
    publicKeyPem = (await client.getPublicKey({ keyId: 'rb/ec' })).publicKeyPem;
    await client.createKey({ keyId: 'rb/mac', keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC });
    mac = Buffer.from((await client.generateMac({ keyId: 'rb/mac', message, macAlgorithm: MacAlgorithm.HMAC_SHA_256 })).mac);
    for (const keyId of ['rb/aes', 'rb/ec', 'rb/mac']) {
      const described = (await client.describeKey({ keyId })).keyMetadata;
      assert.ok(described);
      before_[keyId] = described;
    }
    client.close();

    // Lose the store: the broker stops and its database goes; tokens stay.
    await broker.stop();
    for (const name of readdirSync(dataDir).filter((entry) => entry.startsWith('broker.db'))) rmSync(join(dataDir, name));
    broker = await startBrokerProcess({ env: env() });
    client = createBrokerClient({ address: broker.address, deadlineMs: 120_000 });
  });

  after(async () => {
    client?.close();
    await broker?.stop();
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(`${dataDir}-backup-hsm`, { recursive: true, force: true });
    }
  });

  async function rejectsWith(promise: Promise<unknown>, code: Code): Promise<BrokerError> {
    let failure: unknown;
    await assert.rejects(promise, (error: unknown) => {
      failure = error;
      return true;
    });
    assert.ok(failure instanceof BrokerError);
    assert.equal(codeName(failure.code), codeName(code), failure.message);
    return failure;
  }

  it('starts with an empty registry: the keys are unknown', async () => {
    assert.equal((await client.listKeys({})).keys.length, 0);
    await rejectsWith(client.describeKey({ keyId: 'rb/aes' }), Code.NOT_FOUND);
    const refused = await rejectsWith(client.decrypt({ ciphertext: ciphertexts[0] }), Code.INVALID_ARGUMENT);
    assert.match(refused.message, /names a key that does not exist/);
  });

  it('reports in a dry run and writes nothing', async () => {
    const result = await runHsmctl(broker.address, ['registry', 'rebuild', '--dry-run']);
    assert.equal(result.status, 0, result.stderr);
    const text = result.stdout.toString();
    assert.match(text, /^Would register 3 keys from 3 appliances, every one DISABLED\./);
    assert.match(text, /rb\/aes {2}AES_256 {2}ENCRYPT_DECRYPT {2}primary v2/);
    assert.match(text, /Nothing was written \(dry run\)\./);
    assert.equal((await client.listKeys({})).keys.length, 0);
  });

  it('rebuilds ids, specs, usages, versions and replicas, every key DISABLED with a note', async () => {
    const result = await runHsmctl(broker.address, ['registry', 'rebuild', '--output', 'json']);
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout.toString()) as { keys: { keyMetadata: { keyId: string }; notes?: string[] }[]; appliancesScanned: number };
    const notes = JSON.stringify(report.keys.map((key) => key.notes ?? []));
    assert.equal(report.appliancesScanned, 3);
    assert.deepEqual(report.keys.map((key) => key.keyMetadata.keyId), ['rb/aes', 'rb/ec', 'rb/mac']);
    for (const keyId of ['rb/aes', 'rb/ec', 'rb/mac']) {
      const rebuilt = (await client.describeKey({ keyId })).keyMetadata;
      const original = before_[keyId];
      assert.ok(rebuilt && original);
      assert.equal(rebuilt.keySpec, original.keySpec, keyId);
      assert.equal(rebuilt.keyUsage, original.keyUsage, keyId);
      assert.equal(rebuilt.primaryVersion, original.primaryVersion, keyId);
      assert.deepEqual(rebuilt.versions.map((v) => v.version), original.versions.map((v) => v.version), keyId);
      for (const [index, version] of rebuilt.versions.entries()) {
        const originalReplicas = original.versions[index]?.replicas.map((r) => r.applianceId).sort();
        assert.deepEqual(version.replicas.map((r) => r.applianceId).sort(), originalReplicas, `${keyId} v${String(version.version)}: ${notes}`);
      }
      assert.equal(rebuilt.keyState, KeyState.DISABLED, keyId);
      assert.match(rebuilt.description, /Rebuilt from the appliances .* DISABLED until an operator reviews and enables it/);
      assert.deepEqual(rebuilt.labels, {}, 'labels are not on the HSMs and do not come back');
    }
  });

  it('leaves a rebuilt key unusable until it is enabled', async () => {
    const refused = await rejectsWith(client.decrypt({ ciphertext: ciphertexts[0] }), Code.FAILED_PRECONDITION);
    assert.match(refused.reason, /DISABLED/);
    await rejectsWith(
      client.sign({ keyId: 'rb/ec', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }),
      Code.FAILED_PRECONDITION,
    );
    await rejectsWith(client.encrypt({ keyId: 'rb/aes', plaintext: Buffer.from('new') }), Code.FAILED_PRECONDITION);
    await rejectsWith(client.getPublicKey({ keyId: 'rb/ec' }), Code.FAILED_PRECONDITION);
  });

  it('after enabling: old ciphertexts of both versions decrypt, old signatures and MACs verify', async () => {
    for (const keyId of ['rb/aes', 'rb/ec', 'rb/mac']) await client.enableKey({ keyId });
    const publicKey = (await client.getPublicKey({ keyId: 'rb/ec' })).publicKeyPem;
    assert.equal(publicKey, publicKeyPem, 'the public key comes back from the appliances unchanged');
    for (const [index, ciphertext] of ciphertexts.entries()) {
      const opened = await client.decrypt({ ciphertext });
      assert.deepEqual(Buffer.from(opened.plaintext), plaintexts[index]);
      assert.equal(opened.keyVersion, index + 1);
    }
    assert.ok(cryptoVerify('sha256', message, createPublicKey(publicKeyPem), signature), 'node:crypto verifies the old signature');
    const verified = await client.verify({
      keyId: 'rb/ec',
      message,
      messageType: MessageType.RAW,
      signature,
      signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
    });
    assert.equal(verified.signatureValid, true);
    const fresh = await client.sign({ keyId: 'rb/ec', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.ok(cryptoVerify('sha256', message, createPublicKey(publicKeyPem), Buffer.from(fresh.signature)), 'new signatures are by the same key');
    assert.equal((await client.verifyMac({ keyId: 'rb/mac', message, mac, macAlgorithm: MacAlgorithm.HMAC_SHA_256 })).macValid, true);
    const tampered = Buffer.from(ciphertexts[1] ?? Buffer.alloc(0));
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    await rejectsWith(client.decrypt({ ciphertext: tampered }), Code.INVALID_ARGUMENT);
    // New ciphertexts go under the rebuilt primary version.
    const sealed = await client.encrypt({ keyId: 'rb/aes', plaintext: Buffer.from('after') });
    assert.equal(sealed.keyVersion, 2);
  });

  it('running it again registers nothing and changes nothing', async () => {
    const again = await client.rebuildRegistry({});
    assert.equal(again.keys.length, 0);
    assert.deepEqual(again.alreadyRegistered, ['rb/aes', 'rb/ec', 'rb/mac']);
    assert.equal((await client.describeKey({ keyId: 'rb/aes' })).keyMetadata?.keyState, KeyState.ENABLED);
  });

  it('is in the audit trail with what it registered', async () => {
    const records = (await client.searchAudit({ filter: { operation: 'RebuildRegistry' } })).records;
    assert.equal(records.length, 3);
    const written = records.find((record) => record.json.includes('"rebuilt":["rb/aes","rb/ec","rb/mac"]') && record.json.includes('"dryRun":false'));
    assert.ok(written, records.map((record) => record.json).join('\n'));
    assert.equal(written.code, 0);
  });
});
