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

describe('broker resilience', { timeout: 600_000 }, () => {
  let t: TestBroker;

  before(async () => {
    t = await startTestBroker();
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
    const result = await underLoad(8, sign, async () => {
      await sleep(300);
      for (const pid of pidsBefore) process.kill(pid, 'SIGKILL');
      await sleep(300);
      // Kill a worker of another appliance too, while the first is restarting.
      const [other] = t.broker.fleet.appliance('hsm-b1').workerPids;
      if (other !== undefined) process.kill(other, 'SIGKILL');
      const deadline = Date.now() + 15_000;
      while ((appliance.workerCount < 2 || t.broker.fleet.appliance('hsm-b1').workerCount < 2) && Date.now() < deadline) await sleep(50);
      await sleep(300);
    });
    assert.deepEqual(result.failed, [], 'no call failed');
    assert.ok(result.ok > 50, `traffic flowed (${String(result.ok)} calls)`);
    assert.equal(appliance.workerCount, 2, 'the killed workers were replaced');
    assert.ok(appliance.stats.workerRestartsTotal >= restartsBefore + 2);
    assert.equal(appliance.workerPids.filter((pid) => pidsBefore.includes(pid)).length, 0);
    // The restarted workers serve again once a probe has closed the breaker.
    const closedBy = Date.now() + 15_000;
    while (appliance.breaker.state !== 'closed' && Date.now() < closedBy) await sleep(50);
    assert.equal(appliance.breaker.state, 'closed');
    const before = appliance.stats.requestsTotal;
    await underLoad(4, sign, () => sleep(1000));
    assert.ok(appliance.stats.requestsTotal > before, 'the appliance takes traffic after its restart');
  });

  it('keeps serving when one appliance has no worker at all', async () => {
    const appliance = t.broker.fleet.appliance('hsm-c1');
    const encrypt = (): Promise<unknown> => t.clients.crypto.encrypt({ keyId: 'r/aes', plaintext: Buffer.from('x'), encryptionContext: {} });
    const result = await underLoad(6, encrypt, async () => {
      // Keep killing its workers for a second, as a crash-looping appliance would.
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        for (const pid of appliance.workerPids) process.kill(pid, 'SIGKILL');
        await sleep(20);
      }
    });
    assert.deepEqual(result.failed, []);
    assert.ok(result.ok > 20);
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
