import assert from 'node:assert/strict';
import { constants, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { credentials } from '@grpc/grpc-js';
import { BackupHsm, encodeBackup, objectLabel } from '@hsm-broker/keys';
import { BackupServiceClient, FaultKind, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import type { CreateBackupResponse, RestoreBackupResponse } from '@hsm-broker/proto';
import { initializeLocalToken, provisionLocalBackupHsm } from './local-fleet.js';
import { createLogger } from './logger.js';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const day = 24 * 60 * 60 * 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const quick = { routing: { openMs: 200, maxOpenMs: 1000, healthIntervalMs: 100, probeTimeoutMs: 500, slowStartMs: 200 }, timeouts: { callMs: 2000 } };
const everyAppliance = ['hsm-a1', 'hsm-b1', 'hsm-c1'];

async function until(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function createKey(t: TestBroker, keyId: string, keySpec: KeySpec, keyUsage: KeyUsage, rotationPeriodDays = 0): Promise<void> {
  await t.clients.keys.createKey({ keyId, keySpec, keyUsage, description: '', labels: {}, rotationPeriodDays });
}

async function replicasOf(t: TestBroker, keyId: string): Promise<string[][]> {
  const described = await t.clients.keys.describeKey({ keyId });
  return (described.keyMetadata?.versions ?? []).map((version) => version.replicas.map((replica) => replica.applianceId).sort());
}

function collect<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const events: T[] = [];
    stream.on('data', (event: T) => events.push(event));
    stream.on('error', reject);
    stream.on('end', () => resolve(events));
  });
}

const specs: [string, KeySpec, KeyUsage][] = [
  ['AES_256', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT],
  ['HMAC_256', KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC],
  ['ECC_NIST_P256', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY],
  ['ECC_NIST_P384', KeySpec.ECC_NIST_P384, KeyUsage.SIGN_VERIFY],
  ['RSA_2048', KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY],
  ['RSA_3072', KeySpec.RSA_3072, KeyUsage.SIGN_VERIFY],
];

describe('key durability on a 3x1 fleet', { timeout: 900_000 }, () => {
  let t: TestBroker;
  let now = Date.now();

  before(async () => {
    t = await startTestBroker({ env: { HSMB_FAULT_INJECTION: '1', HSMB_WORKERS_PER_APPLIANCE: '1' }, config: quick, clock: () => now });
  });

  after(async () => {
    await t.dispose();
  });

  it('creates keys of every spec while an appliance is down, then repairs it without operator action', async () => {
    await t.clients.fleet.injectFault({ applianceId: 'hsm-c1', kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
    await until(() => t.broker.fleet.appliance('hsm-c1').workerCount === 0, 5000, 'hsm-c1 to go down');
    for (const [name, spec, usage] of specs) await createKey(t, `down/${name}`, spec, usage);
    for (const [name] of specs) assert.deepEqual(await replicasOf(t, `down/${name}`), [['hsm-a1', 'hsm-b1']], name);
    const described = await t.clients.keys.describeKey({ keyId: 'down/AES_256' });
    assert.deepEqual(described.keyMetadata?.versions[0]?.missingReplicas, ['hsm-c1']);
    await t.clients.fleet.clearFaults({ applianceId: 'hsm-c1' });
    for (const [name] of specs) {
      await until(async () => (await replicasOf(t, `down/${name}`))[0]?.includes('hsm-c1') === true, 30_000, `${name} to reach hsm-c1`);
    }
    assert.equal(await t.broker.fleet.executeOn('hsm-c1', 'hasKey', { label: objectLabel('down/RSA_3072', 1) }), true);
    // It serves them: with the other two drained, calls land on hsm-c1.
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-b1' });
    try {
      const before = t.broker.fleet.appliance('hsm-c1').stats.requestsTotal;
      const sealed = await t.clients.crypto.encrypt({ keyId: 'down/AES_256', plaintext: Buffer.from('x'), encryptionContext: {} });
      assert.equal((await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} })).plaintext.toString(), 'x');
      const signed = await t.clients.crypto.sign({ keyId: 'down/ECC_NIST_P384', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_384 });
      const publicKey = await t.clients.crypto.getPublicKey({ keyId: 'down/ECC_NIST_P384', keyVersion: 0 });
      assert.equal(cryptoVerify('sha384', Buffer.from('m'), createPublicKey(publicKey.publicKeyPem), signed.signature), true);
      assert.ok(t.broker.fleet.appliance('hsm-c1').stats.requestsTotal >= before + 3);
    } finally {
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a1' });
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-b1' });
    }
  });

  it('refills a wiped appliance under load with no failed call, then routes to it again', async () => {
    const tokenDir = join(t.dataDir, 'fleet', 'hsm-b1', 'tokens');
    const pins = JSON.parse(readFileSync(join(t.dataDir, 'secrets', 'hsm-b1.json'), 'utf8')) as { soPin: string; userPin: string };
    const serialBefore = t.broker.fleet.appliance('hsm-b1').token?.serial;
    assert.ok(serialBefore);
    let running = true;
    const failed: string[] = [];
    let ok = 0;
    const load = Array.from({ length: 4 }, async (_, i) => {
      while (running) {
        try {
          if (i % 2 === 0) await t.clients.crypto.encrypt({ keyId: 'down/AES_256', plaintext: Buffer.from('load'), encryptionContext: {} });
          else await t.clients.crypto.sign({ keyId: 'down/ECC_NIST_P256', message: Buffer.from('load'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
          ok++;
        } catch (error: unknown) {
          failed.push(`${String((error as ServiceError).code)} ${(error as ServiceError).details}`);
        }
      }
    });
    try {
      await until(() => ok >= 8, 30_000, 'traffic to flow');
      const okBeforeWipe = ok;
      // A replaced device: the token is gone and a new one is initialised in its place.
      for (const entry of readdirSync(tokenDir)) rmSync(join(tokenDir, entry), { recursive: true, force: true });
      await initializeLocalToken('hsm-b1', '/usr/lib/softhsm/libsofthsm2.so', { SOFTHSM2_CONF: join(t.dataDir, 'fleet', 'hsm-b1', 'softhsm2.conf') }, pins, 10_000);
      // The broker notices the new token by itself (its probes read the serial)…
      await until(() => t.broker.fleet.appliance('hsm-b1').token?.serial !== serialBefore, 30_000, 'the replaced token to be noticed');
      // …re-enrolls it and copies every version back.
      for (const [name] of specs) {
        await until(
          async () =>
            (await replicasOf(t, `down/${name}`))[0]?.includes('hsm-b1') === true &&
            (await t.broker.fleet.executeOn('hsm-b1', 'hasKey', { label: objectLabel(`down/${name}`, 1) })),
          60_000,
          `${name} to be refilled on hsm-b1`,
        );
      }
      assert.ok(ok > okBeforeWipe, 'calls completed while hsm-b1 was being replaced');
    } finally {
      running = false;
      await Promise.all(load);
    }
    assert.deepEqual(failed, [], 'no call failed');
    assert.equal(await t.broker.fleet.executeOn('hsm-b1', 'hasKey', { label: objectLabel('down/HMAC_256', 1) }), true);
    // Rejoined: drained peers leave only hsm-b1, and it serves.
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
    await t.clients.fleet.drainAppliance({ applianceId: 'hsm-c1' });
    try {
      await t.clients.crypto.sign({ keyId: 'down/RSA_2048', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PSS_SHA_256 });
    } finally {
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-a1' });
      await t.clients.fleet.undrainAppliance({ applianceId: 'hsm-c1' });
    }
  });

  it('reports orphans without deleting them and repairs a replica lost behind its back', async () => {
    // Only the ResyncKeys below may notice and repair the loss, not a background run in between.
    t.broker.reconciler.pause();
    let report;
    try {
      await t.broker.fleet.executeOn('hsm-a1', 'generateKey', { spec: 'AES_256', label: 'hsmb:ghost:1' });
      await t.broker.fleet.executeOn('hsm-b1', 'destroyKey', { label: objectLabel('down/AES_256', 1) });
      report = await t.clients.fleet.resyncKeys({ applianceId: '' });
    } finally {
      t.broker.reconciler.resume();
    }
    assert.ok(report.orphans.includes('hsm-a1:hsmb:ghost:1'), JSON.stringify(report));
    assert.equal(report.lost, 1);
    assert.ok(report.copied >= 1);
    assert.equal(await t.broker.fleet.executeOn('hsm-a1', 'hasKey', { label: 'hsmb:ghost:1' }), true, 'the orphan is left in place');
    assert.equal(await t.broker.fleet.executeOn('hsm-b1', 'hasKey', { label: objectLabel('down/AES_256', 1) }), true, 'the lost replica is back');
    const status = await t.clients.fleet.getFleetStatus({});
    assert.deepEqual(status.appliances.find((appliance) => appliance.id === 'hsm-a1')?.orphans, ['hsmb:ghost:1']);
    assert.ok(status.appliances.every((appliance) => appliance.enrolled && appliance.keysMissing === 0));
  });

  it('refuses CreateKey clearly when only one zone is healthy, leaving nothing behind', async () => {
    for (const id of ['hsm-b1', 'hsm-c1']) await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
    try {
      await until(() => ['hsm-b1', 'hsm-c1'].every((id) => t.broker.fleet.appliance(id).workerCount === 0), 5000, 'zones b and c to go down');
      const refused = await statusOf(t.clients.keys.createKey({ keyId: 'quorum/1', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 }));
      assert.equal(refused.code, status.UNAVAILABLE);
      assert.match(refused.message, /durability quorum not reached.*1 appliance\(s\) in 1 zone\(s\).*needs 2 in 2/);
      assert.equal((await statusOf(t.clients.keys.describeKey({ keyId: 'quorum/1' }))).code, status.NOT_FOUND);
      const objects = await t.broker.fleet.executeOn('hsm-a1', 'listKeys', { prefix: 'hsmb:quorum/' });
      assert.deepEqual(objects, [], 'no half-made key object remains');
    } finally {
      await t.clients.fleet.clearFaults({ applianceId: '' });
      await until(() => t.broker.fleet.appliances.every((appliance) => appliance.workerCount === 1 && appliance.breaker.state === 'closed'), 30_000, 'the fleet to recover');
    }
    // An operator who accepts less durability lowers the policy (a restart with new settings), and it passes.
    await t.stop();
    t = await startTestBroker({
      dataDir: t.dataDir,
      env: { HSMB_FAULT_INJECTION: '1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_MIN_REPLICAS: '1', HSMB_MIN_ZONES: '1' },
      config: quick,
      clock: () => now,
    });
    for (const id of ['hsm-b1', 'hsm-c1']) await t.clients.fleet.injectFault({ applianceId: id, kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
    try {
      await until(() => ['hsm-b1', 'hsm-c1'].every((id) => t.broker.fleet.appliance(id).workerCount === 0), 5000, 'zones b and c to go down');
      await createKey(t, 'quorum/1', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
      assert.deepEqual(await replicasOf(t, 'quorum/1'), [['hsm-a1']]);
    } finally {
      await t.clients.fleet.clearFaults({ applianceId: '' });
      await until(() => t.broker.fleet.appliances.every((appliance) => appliance.workerCount === 1 && appliance.breaker.state === 'closed'), 30_000, 'the fleet to recover');
    }
  });

  it('retires old versions with a minimum decryption version, and rotates on a period', async () => {
    await createKey(t, 'life/aes', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, 90);
    const created = await t.clients.keys.describeKey({ keyId: 'life/aes' });
    assert.equal(created.keyMetadata?.rotationPeriodDays, 90);
    assert.equal(created.keyMetadata?.nextRotationTime?.getTime(), now + 90 * day);
    const old = await t.clients.crypto.encrypt({ keyId: 'life/aes', plaintext: Buffer.from('v1'), encryptionContext: {} });
    now += 91 * day;
    assert.deepEqual(await t.broker.sweepRotations(), { done: ['life/aes'], failures: [] });
    const rotated = await t.clients.keys.describeKey({ keyId: 'life/aes' });
    assert.equal(rotated.keyMetadata?.primaryVersion, 2);
    assert.equal(rotated.keyMetadata?.nextRotationTime?.getTime(), now + 90 * day);
    await t.clients.keys.updateKeySettings({ keyId: 'life/aes', minDecryptionVersion: 2 });
    const retired = await statusOf(t.clients.crypto.decrypt({ ciphertext: old.ciphertext, encryptionContext: {} }));
    assert.equal(retired.code, status.FAILED_PRECONDITION);
    assert.match(retired.message, /retired/);
    await t.clients.keys.updateKeySettings({ keyId: 'life/aes', minDecryptionVersion: 1 });
    assert.equal((await t.clients.crypto.decrypt({ ciphertext: old.ciphertext, encryptionContext: {} })).plaintext.toString(), 'v1');
    for (const [field, request] of [
      ['min_decryption_version', { keyId: 'life/aes' }],
      ['min_decryption_version', { keyId: 'life/aes', minDecryptionVersion: 3 }],
      ['rotation_period_days', { keyId: 'life/aes', rotationPeriodDays: 30 }],
    ] as const) {
      const refused = await statusOf(t.clients.keys.updateKeySettings(request));
      assert.equal(refused.code, status.INVALID_ARGUMENT);
      assert.match(refused.message, new RegExp(field));
    }
  });

  it('destroys a deleted key everywhere, finishing on an appliance that was down at the time', async () => {
    await createKey(t, 'gone/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
    await t.clients.keys.scheduleKeyDeletion({ keyId: 'gone/ec', pendingWindowDays: 7 });
    await t.clients.fleet.injectFault({ applianceId: 'hsm-c1', kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
    await until(() => t.broker.fleet.appliance('hsm-c1').workerCount === 0, 5000, 'hsm-c1 to go down');
    now += 8 * day;
    const postponed = await t.broker.sweepDeletions();
    assert.deepEqual(postponed.done, [], 'not finished while hsm-c1 is down');
    assert.equal(postponed.failures.length, 1, JSON.stringify(postponed.failures));
    assert.match(postponed.failures[0] ?? '', /^gone\/ec version 1 on hsm-c1: /, 'the copy left behind is reported');
    for (const id of ['hsm-a1', 'hsm-b1']) assert.equal(await t.broker.fleet.executeOn(id, 'hasKey', { label: objectLabel('gone/ec', 1) }), false, `destroyed on ${id}`);
    assert.equal((await t.clients.keys.describeKey({ keyId: 'gone/ec' })).keyMetadata?.keyState, 3, 'still PENDING_DELETION');
    await t.clients.fleet.clearFaults({ applianceId: 'hsm-c1' });
    await until(() => t.broker.fleet.appliance('hsm-c1').workerCount === 1, 10_000, 'hsm-c1 to return');
    assert.deepEqual(await t.broker.sweepDeletions(), { done: ['gone/ec'], failures: [] });
    assert.equal(await t.broker.fleet.executeOn('hsm-c1', 'hasKey', { label: objectLabel('gone/ec', 1) }), false);
    assert.equal((await statusOf(t.clients.keys.describeKey({ keyId: 'gone/ec' }))).code, status.NOT_FOUND);
  });
});

describe('backup and restore', { timeout: 900_000 }, () => {
  let t: TestBroker;

  before(async () => {
    t = await startTestBroker({ env: { HSMB_WORKERS_PER_APPLIANCE: '1' }, config: quick });
  });

  after(async () => {
    await t.dispose();
  });

  it('brings every key back into new tokens: old ciphertexts decrypt, old signatures and MACs verify', async () => {
    await createKey(t, 'b/aes', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
    await createKey(t, 'b/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
    await createKey(t, 'b/rsa', KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY);
    await createKey(t, 'b/mac', KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC);
    const v1 = await t.clients.crypto.encrypt({ keyId: 'b/aes', plaintext: Buffer.from('before rotation'), encryptionContext: { t: '1' } });
    await t.clients.keys.rotateKey({ keyId: 'b/aes' });
    const v2 = await t.clients.crypto.encrypt({ keyId: 'b/aes', plaintext: Buffer.from('after rotation'), encryptionContext: { t: '2' } });
    const ec = await t.clients.crypto.sign({ keyId: 'b/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    const rsa = await t.clients.crypto.sign({ keyId: 'b/rsa', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PSS_SHA_256 });
    const rsaPublic = (await t.clients.crypto.getPublicKey({ keyId: 'b/rsa', keyVersion: 0 })).publicKeyDer;
    const mac = await t.clients.crypto.generateMac({ keyId: 'b/mac', message: Buffer.from('m'), macAlgorithm: MacAlgorithm.HMAC_SHA_256 });

    const backupClient = new BackupServiceClient(t.broker.address, credentials.createInsecure());
    const events = await collect<CreateBackupResponse>(backupClient.createBackup({}));
    backupClient.close();
    const file = Buffer.concat(events.flatMap((event) => (event.chunk ? [event.chunk] : [])));
    const summary = events.find((event) => event.summary)?.summary;
    assert.equal(summary?.keys, 4);
    assert.equal(summary?.keyVersions, 5);
    assert.ok(events.some((event) => event.progress?.stage === 'wrapping' && event.progress.done === 5));
    assert.ok(!file.includes(Buffer.from('before rotation')), 'nothing readable');

    // Disaster: every fleet token and the registry are lost. The backup HSM survives.
    await t.stop();
    for (const id of everyAppliance) {
      const tokens = join(t.dataDir, 'fleet', id, 'tokens');
      for (const entry of readdirSync(tokens)) rmSync(join(tokens, entry), { recursive: true, force: true });
    }
    for (const name of readdirSync(t.dataDir).filter((entry) => entry.startsWith('broker.db'))) rmSync(join(t.dataDir, name));
    const fresh = await startTestBroker({ dataDir: t.dataDir, env: { HSMB_WORKERS_PER_APPLIANCE: '1' }, config: quick });
    try {
      assert.deepEqual((await fresh.clients.keys.listKeys({ pageSize: 10, pageToken: '' })).keys, []);
      const restoreClient = new BackupServiceClient(fresh.broker.address, credentials.createInsecure());
      const restore = (backup: Buffer): Promise<RestoreBackupResponse[]> => collect(restoreClient.restoreBackup({ backup }));
      // A damaged or truncated file is refused and changes nothing.
      const flipped = Buffer.from(file);
      flipped[Math.floor(flipped.length / 2)] = (flipped[Math.floor(flipped.length / 2)] ?? 0) ^ 1;
      for (const bad of [flipped, file.subarray(0, file.length - 10), Buffer.from('not a backup')]) {
        const refused = await restore(bad).then(
          () => undefined,
          (error: ServiceError) => error,
        );
        assert.equal(refused?.code, status.INVALID_ARGUMENT, refused?.details);
        assert.match(refused?.details ?? '', /^backup: .*nothing was restored/);
      }
      assert.deepEqual((await fresh.clients.keys.listKeys({ pageSize: 10, pageToken: '' })).keys, []);

      // Two forgeries that pass the length and digest checks, so only the backup HSM's seal can catch them.
      const newline = file.indexOf(0x0a);
      const header = JSON.parse(file.subarray(0, newline).toString('utf8')) as { seal: string };
      const payload = file.subarray(newline + 1);
      const contents = JSON.parse(payload.toString('utf8')) as { keys: { description: string }[] };
      const first = contents.keys[0];
      assert.ok(first);
      first.description = 'altered after sealing';
      const recomputed = encodeBackup(Buffer.from(JSON.stringify(contents), 'utf8'), Buffer.from(header.seal, 'base64'));
      const otherDir = mkdtempSync(join(tmpdir(), 'hsmb-other-backup-'));
      let foreign: Buffer;
      try {
        const other = new BackupHsm(await provisionLocalBackupHsm(otherDir, '/usr/lib/softhsm/libsofthsm2.so', 15_000, createLogger('error')), 60_000);
        await other.ensureKeys();
        foreign = encodeBackup(payload, await other.seal(payload));
      } finally {
        rmSync(otherDir, { recursive: true, force: true });
      }
      for (const [what, forged] of [
        ['payload altered and its SHA-256 recomputed', recomputed],
        ['the same payload sealed by another backup HSM', foreign],
      ] as const) {
        const refused = await restore(forged).then(
          () => undefined,
          (error: ServiceError) => error,
        );
        assert.equal(refused?.code, status.INVALID_ARGUMENT, `${what}: ${String(refused?.details)}`);
        assert.match(refused?.details ?? '', /^backup: the seal does not match.*nothing was restored/, what);
        assert.equal(refused?.metadata.get('hsmb-reason')[0], 'INVALID_BACKUP', what);
      }
      assert.deepEqual((await fresh.clients.keys.listKeys({ pageSize: 10, pageToken: '' })).keys, []);

      const restored = await restore(file);
      assert.equal(restored.at(-1)?.summary?.keys, 4);
      assert.equal(restored.at(-1)?.summary?.sha256, summary?.sha256);
      assert.equal((await fresh.clients.crypto.decrypt({ ciphertext: v1.ciphertext, encryptionContext: { t: '1' } })).plaintext.toString(), 'before rotation');
      assert.equal((await fresh.clients.crypto.decrypt({ ciphertext: v2.ciphertext, encryptionContext: { t: '2' } })).plaintext.toString(), 'after rotation');
      const verified = await fresh.clients.crypto.verify({ keyId: 'b/ec', keyVersion: 0, message: Buffer.from('m'), messageType: MessageType.RAW, signature: ec.signature, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
      assert.equal(verified.signatureValid, true);
      const rsaNow = await fresh.clients.crypto.sign({ keyId: 'b/rsa', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PSS_SHA_256 });
      const oldKey = createPublicKey({ key: rsaPublic, format: 'der', type: 'spki' });
      for (const signature of [rsa.signature, rsaNow.signature]) {
        assert.equal(cryptoVerify('sha256', Buffer.from('m'), { key: oldKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature), true);
      }
      assert.equal((await fresh.clients.crypto.verifyMac({ keyId: 'b/mac', keyVersion: 0, message: Buffer.from('m'), mac: mac.mac, macAlgorithm: MacAlgorithm.HMAC_SHA_256 })).macValid, true);
      assert.deepEqual(await replicasOf(fresh, 'b/aes'), [everyAppliance, everyAppliance], 'restored keys are replicated to the whole fleet');
      const again = await restore(file).then(
        () => undefined,
        (error: ServiceError) => error,
      );
      assert.equal(again?.code, status.ALREADY_EXISTS);
      restoreClient.close();
    } finally {
      await fresh.stop();
    }
  });
});
