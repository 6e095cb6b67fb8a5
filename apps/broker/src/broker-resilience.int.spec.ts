import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { connect, startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { recordRoutedCalls } from './testing/routed-calls.js';
import type { RoutedCallRecorder } from './testing/routed-calls.js';

const require = createRequire(import.meta.url);

/** Runs `callers` loops of `call` until `stop` resolves; counts successes and failures. */
async function underLoad(callers: number, call: () => Promise<unknown>, during: () => Promise<void>): Promise<{ ok: number; failed: string[] }> {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const loops = Array.from({ length: callers }, async () => {
    while (running) {
      try {
        await call();
        ok++;
      } catch (error: unknown) {
        failed.push((error as ServiceError).details ?? String(error));
      }
    }
  });
  try {
    await during();
  } finally {
    running = false;
    await Promise.all(loops);
  }
  return { ok, failed };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('broker resilience', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let routed: RoutedCallRecorder;

  before(async () => {
    t = await startTestBroker();
    routed = recordRoutedCalls(t.broker.fleet);
    await t.clients.keys.createKey({ keyId: 'r/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'r/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    await t.dispose();
  });

  it('restarts killed appliance workers while traffic continues without a failed call', async () => {
    const appliance = t.broker.fleet.appliance('hsm-a1');
    const restartsBefore = appliance.stats.workerRestartsTotal;
    const pidsBefore = appliance.workerPids;
    const sign = (): Promise<unknown> =>
      t.clients.crypto.sign({ keyId: 'r/ec', message: Buffer.from('load'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    const other = t.broker.fleet.appliance('hsm-b1');
    const otherRestartsBefore = other.stats.workerRestartsTotal;
    let otherPid: number | undefined;
    let during = 0;
    const result = await underLoad(8, sign, async () => {
      await until(() => routed.calls.length >= 20, 30_000, 'traffic to flow');
      for (const pid of pidsBefore) process.kill(pid, 'SIGKILL');
      const killedAt = Date.now();
      // Kill a worker of another appliance too, while the first is restarting.
      await until(() => appliance.stats.workerRestartsTotal > restartsBefore || appliance.workerCount < 2, 15_000, 'hsm-a1 to notice its dead workers');
      [otherPid] = other.workerPids;
      assert.ok(otherPid !== undefined, 'hsm-b1 has a worker to kill');
      process.kill(otherPid, 'SIGKILL');
      await until(() => appliance.workerCount === 2 && other.workerCount === 2 && !other.workerPids.includes(otherPid ?? -1), 15_000, 'both appliances to replace their workers');
      const settledBefore = routed.calls.length;
      await until(() => routed.calls.length >= settledBefore + 20, 30_000, 'traffic to keep flowing');
      during = routed.startedSince(killedAt, 'sign').filter((call) => call.answeredBy !== undefined).length;
    });
    assert.deepEqual(result.failed, [], 'no call failed');
    assert.ok(during > 0, 'calls started after the kill were answered');
    assert.equal(appliance.workerCount, 2, 'the killed workers were replaced');
    assert.ok(appliance.stats.workerRestartsTotal >= restartsBefore + 2);
    assert.equal(appliance.workerPids.filter((pid) => pidsBefore.includes(pid)).length, 0);
    assert.ok(other.stats.workerRestartsTotal > otherRestartsBefore, 'the second kill happened and hsm-b1 replaced its worker');
    assert.ok(!other.workerPids.includes(otherPid ?? -1));
    // The restarted workers serve again once a probe has closed the breaker.
    await until(() => appliance.breaker.state === 'closed', 15_000, 'hsm-a1 breaker to close');
    const since = Date.now();
    await underLoad(4, sign, () => until(() => (routed.answeredBy(routed.startedSince(since)).get('hsm-a1') ?? 0) > 0, 30_000, 'hsm-a1 to answer again'));
  });

  it('keeps serving when one appliance has no worker at all', async () => {
    const appliance = t.broker.fleet.appliance('hsm-c1');
    const restartsBefore = appliance.stats.workerRestartsTotal;
    const encrypt = (): Promise<unknown> => t.clients.crypto.encrypt({ keyId: 'r/aes', plaintext: Buffer.from('x'), encryptionContext: {} });
    let since = 0;
    const result = await underLoad(6, encrypt, async () => {
      await until(() => routed.calls.length > 0, 30_000, 'traffic to flow');
      since = Date.now();
      // Keep killing its workers, as a crash-looping appliance would, until 40 more calls have settled.
      const settledBefore = routed.calls.length;
      let kills = 0;
      while (routed.calls.length < settledBefore + 40 || kills < 10) {
        for (const pid of appliance.workerPids) {
          process.kill(pid, 'SIGKILL');
          kills++;
        }
        await sleep(20);
      }
    });
    assert.deepEqual(result.failed, []);
    assert.ok(appliance.stats.workerRestartsTotal > restartsBefore, 'its workers were killed and restarted');
    const answered = routed.startedSince(since, 'encrypt').filter((call) => call.answeredBy !== undefined);
    assert.ok(answered.length >= 40, `calls kept completing (${String(answered.length)})`);
  });

  it('serves grpc.health.v1.Health and server reflection', async () => {
    const healthPath = join(dirname(require.resolve('grpc-health-check')), '../../proto/health/v1/health.proto');
    const reflectionPath = join(dirname(require.resolve('@grpc/reflection')), '../proto/grpc/reflection/v1/reflection.proto');
    const loaded = loadPackageDefinition(loadSync([healthPath, reflectionPath], { keepCase: true, enums: String })) as unknown as {
      grpc: {
        health: { v1: { Health: new (address: string, creds: unknown) => Client & { check(req: unknown, cb: (e: Error | null, r: { status: string }) => void): void } } };
        reflection: { v1: { ServerReflection: new (address: string, creds: unknown) => Client & { ServerReflectionInfo(): NodeJS.ReadWriteStream & { write(m: unknown): void } } } };
      };
    };
    const health = new loaded.grpc.health.v1.Health(t.broker.address, credentials.createInsecure());
    for (const service of ['', 'hsmbroker.v1.CryptoService', 'hsmbroker.v1.KeyService', 'hsmbroker.v1.FleetService']) {
      const response = await new Promise<{ status: string }>((resolve, reject) => health.check({ service }, (e, r) => (e ? reject(e) : resolve(r))));
      assert.equal(response.status, 'SERVING', service);
    }
    health.close();
    const reflection = new loaded.grpc.reflection.v1.ServerReflection(t.broker.address, credentials.createInsecure());
    const stream = reflection.ServerReflectionInfo();
    const answer = new Promise<{ list_services_response: { service: { name: string }[] } }>((resolve, reject) => {
      stream.on('data', resolve);
      stream.on('error', reject);
    });
    stream.write({ list_services: '' });
    const services = (await answer).list_services_response.service.map((service) => service.name);
    stream.end();
    reflection.close();
    for (const name of ['hsmbroker.v1.CryptoService', 'hsmbroker.v1.KeyService', 'hsmbroker.v1.FleetService']) assert.ok(services.includes(name), name);
  });

  it('keeps every key across a broker restart', async () => {
    const sealed = await t.clients.crypto.encrypt({ keyId: 'r/aes', plaintext: Buffer.from('durable'), encryptionContext: { c: '1' } });
    const signed = await t.clients.crypto.sign({ keyId: 'r/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    await t.stop();
    const restarted = await startTestBroker({ dataDir: t.dataDir });
    try {
      const clients = connect(restarted.broker.address);
      const opened = await clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: { c: '1' } });
      assert.equal(opened.plaintext.toString(), 'durable');
      const verified = await clients.crypto.verify({ keyId: 'r/ec', keyVersion: 0, message: Buffer.from('m'), messageType: MessageType.RAW, signature: signed.signature, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
      assert.equal(verified.signatureValid, true);
      const listed = await clients.keys.listKeys({ pageSize: 10, pageToken: '' });
      assert.deepEqual(listed.keys.map((key) => key.keyId), ['r/aes', 'r/ec']);
      clients.close();
    } finally {
      await restarted.stop();
    }
  });
});
