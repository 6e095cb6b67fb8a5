import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { Metadata, status } from '@grpc/grpc-js';
import { maxCiphertextBytes } from '@hsm-broker/keys';
import { DecryptRequest, DescribeKeyRequest, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm, VerifyMacRequest, VerifyRequest } from '@hsm-broker/proto';
import { RawClient } from './testing/raw-client.js';
import type { RawOutcome } from './testing/raw-client.js';
import { connect, startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const crypto = '/hsmbroker.v1.CryptoService';
const keys = '/hsmbroker.v1.KeyService';

/** A protobuf length-delimited field 1 of `length` bytes starting with `head`, built without copying the body twice. */
function field1(head: Buffer, length: number): Buffer {
  const prefix: number[] = [0x0a];
  for (let rest = length; ; rest = Math.floor(rest / 128)) {
    if (rest < 128) {
      prefix.push(rest);
      break;
    }
    prefix.push((rest % 128) | 0x80);
  }
  const message = Buffer.alloc(prefix.length + length, 0x41);
  Buffer.from(prefix).copy(message, 0);
  head.copy(message, prefix.length);
  return message;
}

/** What must not move when a caller sends bad input: worker processes, restarts, breakers, appliance faults. */
function fleetState(t: TestBroker): string {
  return JSON.stringify(
    t.broker.fleet.appliances.map((appliance) => {
      const snapshot = t.broker.fleet.applianceSnapshot(appliance);
      return { id: appliance.id, pids: appliance.workerPids, restarts: snapshot.workerRestartsTotal, breaker: appliance.breaker.state, failures: snapshot.failuresTotal };
    }),
  );
}

function requestsTotal(t: TestBroker): number {
  return t.broker.fleet.appliances.reduce((sum, appliance) => sum + t.broker.fleet.applianceSnapshot(appliance).requestsTotal, 0);
}

function assertRefused(outcome: RawOutcome, code: number, reason: string, field: string): void {
  assert.equal(outcome.code, code, outcome.message);
  assert.equal(outcome.reason, reason, outcome.message);
  assert.ok(outcome.message.startsWith(`${field}: `), `names ${field}: ${outcome.message}`);
  assert.ok(outcome.message.length < 200, `short message: ${outcome.message}`);
}

describe('request limits on a real broker', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let raw: RawClient;
  const lines: string[] = [];

  before(async () => {
    t = await startTestBroker({
      env: { HSMB_LOG_LEVEL: 'info' },
      config: { limits: { maxConcurrentStreams: 16 } },
      logSink: (line) => lines.push(line),
    });
    raw = new RawClient(t.broker.address);
    await t.clients.keys.createKey({ keyId: 'lim/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'lim/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 'lim/hmac', keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    raw.close();
    await t.dispose();
  });

  it('answers a valid ciphertext header followed by 129 MB and 250 MB with INVALID_ARGUMENT, touching no worker', async () => {
    const sealed = await t.clients.crypto.encrypt({ keyId: 'lim/aes', plaintext: Buffer.from('a real ciphertext'), encryptionContext: {} });
    const before = fleetState(t);
    const served = requestsTotal(t);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    for (const megabytes of [129, 250]) {
      const body = field1(sealed.ciphertext, megabytes * 1024 * 1024);
      const outcome = await raw.unary(`${crypto}/Decrypt`, body, { deadlineMs: 120_000 });
      assertRefused(outcome, status.INVALID_ARGUMENT, 'CIPHERTEXT_TOO_LARGE', 'ciphertext');
      assert.match(outcome.message, new RegExp(`at most ${String(maxCiphertextBytes)} are allowed`));
    }
    lag.disable();
    // For the report: how long the event loop (client and broker share it here) stood still.
    process.stderr.write(`# oversize Decrypt: longest event-loop stall ${String(Math.round(lag.max / 1e6))} ms\n`);
    // Just over the largest valid ciphertext: decoded, then refused by the field check.
    const justOver = DecryptRequest.encode({ ciphertext: Buffer.concat([sealed.ciphertext, Buffer.alloc(maxCiphertextBytes)]), encryptionContext: {} }).finish();
    assertRefused(await raw.unary(`${crypto}/Decrypt`, Buffer.from(justOver)), status.INVALID_ARGUMENT, 'CIPHERTEXT_TOO_LARGE', 'ciphertext');
    assert.equal(fleetState(t), before, 'worker pids, restarts, breakers and failure counts are unchanged');
    assert.ok(t.broker.fleet.appliances.every((appliance) => appliance.breaker.state === 'closed'));
    assert.equal(requestsTotal(t), served, 'no appliance saw the oversize requests');
    const opened = await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} });
    assert.equal(opened.plaintext.toString(), 'a real ciphertext');
  });

  it('bounds key ids on every RPC and never echoes more than a short prefix', async () => {
    const served = requestsTotal(t);
    for (const keyId of ['k'.repeat(150), 'k'.repeat(1024 * 1024)]) {
      const outcome = await raw.unary(`${keys}/DescribeKey`, Buffer.from(DescribeKeyRequest.encode({ keyId }).finish()));
      assertRefused(outcome, status.INVALID_ARGUMENT, 'KEY_ID_TOO_LONG', 'key_id');
      assert.ok(!outcome.message.includes('kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'), outcome.message);
    }
    const longId = 'x'.repeat(1024 * 1024);
    for (const call of [
      () => t.clients.crypto.encrypt({ keyId: longId, plaintext: Buffer.from('p'), encryptionContext: {} }),
      () => t.clients.crypto.sign({ keyId: longId, message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }),
      () => t.clients.crypto.getPublicKey({ keyId: longId, keyVersion: 0 }),
      () => t.clients.keys.enableKey({ keyId: longId }),
      () => t.clients.keys.scheduleKeyDeletion({ keyId: longId, pendingWindowDays: 7 }),
      () => t.clients.crypto.reEncrypt({ ciphertext: Buffer.from('HB'), sourceEncryptionContext: {}, destinationKeyId: longId, destinationEncryptionContext: {} }),
      () => t.clients.fleet.drainAppliance({ applianceId: longId }),
      () => t.clients.fleet.fenceZone({ zone: longId }),
    ]) {
      const refused = await statusOf(call());
      assert.equal(refused.code, status.INVALID_ARGUMENT, refused.message);
      assert.ok(refused.message.length < 200 && !refused.message.includes('x'.repeat(100)), refused.message);
    }
    // A key id of 128 bytes that does not exist is NOT_FOUND, quoted in a short prefix.
    const missing = await statusOf(t.clients.keys.describeKey({ keyId: `a${'/b'.repeat(63)}c` }));
    assert.equal(missing.code, status.NOT_FOUND);
    assert.ok(missing.message.length < 200, missing.message);
    assert.equal(requestsTotal(t), served);
  });

  it('bounds signatures and MACs by the key spec before any appliance sees them', async () => {
    const message = Buffer.from('signed message');
    const signed = await t.clients.crypto.sign({ keyId: 'lim/ec', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    const verify = (signature: Buffer): Buffer =>
      Buffer.from(VerifyRequest.encode({ keyId: 'lim/ec', keyVersion: 0, message, messageType: MessageType.RAW, signature, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }).finish());
    const macked = await t.clients.crypto.generateMac({ keyId: 'lim/hmac', message, macAlgorithm: MacAlgorithm.HMAC_SHA_256 });
    const verifyMac = (mac: Buffer): Buffer => Buffer.from(VerifyMacRequest.encode({ keyId: 'lim/hmac', keyVersion: 0, message, mac, macAlgorithm: MacAlgorithm.HMAC_SHA_256 }).finish());
    const served = requestsTotal(t);
    // 73 bytes: longer than any P-256 DER signature, shorter than the API's largest (RSA-4096).
    assertRefused(await raw.unary(`${crypto}/Verify`, verify(Buffer.concat([signed.signature, Buffer.alloc(73 - signed.signature.length)]))), status.INVALID_ARGUMENT, 'SIGNATURE_TOO_LARGE', 'signature');
    assertRefused(await raw.unary(`${crypto}/Verify`, verify(Buffer.alloc(4096))), status.INVALID_ARGUMENT, 'SIGNATURE_TOO_LARGE', 'signature');
    assertRefused(await raw.unary(`${crypto}/VerifyMac`, verifyMac(Buffer.concat([macked.mac, Buffer.alloc(1)]))), status.INVALID_ARGUMENT, 'MAC_TOO_LARGE', 'mac');
    assertRefused(await raw.unary(`${crypto}/VerifyMac`, verifyMac(Buffer.alloc(1024 * 1024))), status.INVALID_ARGUMENT, 'MAC_TOO_LARGE', 'mac');
    assert.equal(requestsTotal(t), served, 'no appliance saw the oversize signatures or MACs');
    const good = await t.clients.crypto.verify({ keyId: 'lim/ec', keyVersion: 0, message, messageType: MessageType.RAW, signature: signed.signature, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.equal(good.signatureValid, true);
    assert.equal((await t.clients.crypto.verifyMac({ keyId: 'lim/hmac', keyVersion: 0, message, mac: macked.mac, macAlgorithm: MacAlgorithm.HMAC_SHA_256 })).macValid, true);
  });

  it('answers undecodable protobuf with INVALID_ARGUMENT, not INTERNAL', async () => {
    // Field 1 announces 2^28 bytes that are not there.
    const truncated = Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x41]);
    for (const path of [`${crypto}/Decrypt`, `${keys}/CreateKey`, '/hsmbroker.v1.FleetService/DrainAppliance']) {
      assertRefused(await raw.unary(path, truncated), status.INVALID_ARGUMENT, 'MALFORMED_REQUEST', 'request');
    }
  });

  it('bounds metadata: entries and bytes', async () => {
    const many = new Metadata();
    for (let i = 0; i < 70; i++) many.set(`x-filler-${String(i)}`, 'v');
    assertRefused(await raw.unary(`${keys}/ListKeys`, Buffer.alloc(0), { metadata: many }), status.INVALID_ARGUMENT, 'METADATA_TOO_LARGE', 'metadata');
    const big = new Metadata();
    big.set('x-filler', 'v'.repeat(20 * 1024));
    assertRefused(await raw.unary(`${keys}/ListKeys`, Buffer.alloc(0), { metadata: big }), status.INVALID_ARGUMENT, 'METADATA_TOO_LARGE', 'metadata');
    const fine = new Metadata();
    fine.set('x-request-id', 'limits-test');
    assert.equal((await raw.unary(`${keys}/ListKeys`, Buffer.alloc(0), { metadata: fine })).code, status.OK);
  });

  it('announces the configured concurrent streams per connection in its HTTP/2 settings', async () => {
    const session = http2Connect(`http://${t.broker.address}`);
    try {
      const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve, reject) => {
        session.once('remoteSettings', resolve);
        session.once('error', reject);
      });
      assert.equal(settings.maxConcurrentStreams, 16);
    } finally {
      session.destroy();
    }
  });

  it('refuses a fence that would leave no zone serving, and keeps serving', async () => {
    await t.clients.fleet.fenceZone({ zone: 'az-a' });
    await t.clients.fleet.fenceZone({ zone: 'az-b' });
    try {
      const refused = await statusOf(t.clients.fleet.fenceZone({ zone: 'az-c' }));
      assert.equal(refused.code, status.FAILED_PRECONDITION);
      assert.match(refused.message, /^zone: fencing az-c would leave no zone serving/);
      assert.deepEqual((await t.clients.fleet.getFleetStatus({})).fencedZones, ['az-a', 'az-b']);
      const sealed = await t.clients.crypto.encrypt({ keyId: 'lim/aes', plaintext: Buffer.from('still served'), encryptionContext: {} });
      assert.equal((await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} })).plaintext.toString(), 'still served');
    } finally {
      await t.clients.fleet.unfenceZone({ zone: 'az-a' });
      await t.clients.fleet.unfenceZone({ zone: 'az-b' });
    }
  });

  it('removes the key an abandoned RSA-4096 creation made, so a retry makes exactly one', async () => {
    const impatient = connect(t.broker.address, 400);
    let keyId = '';
    try {
      for (let attempt = 0; attempt < 3 && keyId === ''; attempt++) {
        const candidate = `lim/abandoned-${String(attempt)}`;
        const outcome = await impatient.keys.createKey({ keyId: candidate, keySpec: KeySpec.RSA_4096, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 }).then(
          () => undefined,
          (error: { code?: number }) => error.code,
        );
        if (outcome === status.DEADLINE_EXCEEDED) keyId = candidate;
      }
    } finally {
      impatient.close();
    }
    assert.notEqual(keyId, '', 'an RSA-4096 creation outlived a 400 ms deadline');
    const label = `hsmb:${keyId}:1`;
    const cleaned = await waitForLine(lines, (entry) => entry['message'] === 'abandoned key creation cleaned up' && entry['label'] === label, 150_000);
    assert.ok(Number(cleaned['destroyed']) >= 1, 'the generation had made an object, and it was destroyed');
    for (const appliance of t.broker.fleet.appliances) {
      assert.equal(countObjects(await listObjects(t, appliance.id), label), 0, `nothing labelled ${label} is left on ${appliance.id}`);
    }
    assert.equal((await statusOf(t.clients.keys.describeKey({ keyId }))).code, status.NOT_FOUND);
    await t.clients.keys.createKey({ keyId, keySpec: KeySpec.RSA_4096, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    for (const appliance of t.broker.fleet.appliances) {
      assert.equal(countObjects(await listObjects(t, appliance.id), label), 2, `one key pair labelled ${label} on ${appliance.id}`);
    }
  });
});

async function waitForLine(lines: string[], match: (entry: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (match(entry)) return entry;
    }
    if (Date.now() > deadline) throw new Error('expected log line did not appear');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Every object on an appliance's token, listed by OpenSC's pkcs11-tool (no code of ours in between). */
function listObjects(t: TestBroker, applianceId: string): Promise<string> {
  const pins = JSON.parse(readFileSync(join(t.dataDir, 'secrets', `${applianceId}.json`), 'utf8')) as { userPin: string };
  return new Promise((resolve, reject) => {
    execFile(
      'pkcs11-tool',
      ['--module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', applianceId, '--login', '--pin', pins.userPin, '--list-objects'],
      { env: { ...process.env, SOFTHSM2_CONF: join(t.dataDir, 'fleet', applianceId, 'softhsm2.conf') } },
      (error: Error | null, stdout: string) => (error ? reject(error) : resolve(stdout)),
    );
  });
}

function countObjects(listing: string, label: string): number {
  return listing.split('\n').filter((line) => /^\s*label:\s+(\S+)\s*$/.exec(line)?.[1] === label).length;
}
