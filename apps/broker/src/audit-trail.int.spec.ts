import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { keyFingerprint, verifyAuditTrail } from '@hsm-broker/audit';
import type { AuditCallRecord, AuditCheckpoint, AuditEntry } from '@hsm-broker/audit';
import { AuditResult, AuditServiceClient, DataKeySpec, KeySpec, KeyUsage } from '@hsm-broker/proto';
import type { AuditRecord, SearchAuditRequest, SearchAuditResponse } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { SyslogCollector } from './testing/syslog-collector.js';

function entriesOf(files: string[]): AuditEntry[] {
  return files.flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as AuditEntry),
  );
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

/** Until `condition` holds; the suite's timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}

describe('audit trail of a real broker', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let collector: SyslogCollector;
  let audit: InstanceType<typeof AuditServiceClient>;
  const plaintexts: Buffer[] = [];
  // Chain order: rotated files by the seq in their names, then the active file.
  const files = (): string[] =>
    filesUnder(join(t.dataDir, 'audit'))
      .filter((path) => /audit\.log\.\d{12}$/.test(path))
      .sort()
      .concat(join(t.dataDir, 'audit', 'audit.log'));
  const search = (request: Partial<SearchAuditRequest>): Promise<SearchAuditResponse> =>
    new Promise((resolve, reject) => audit.searchAudit({ limit: 0, ...request }, (error: ServiceError | null, response: SearchAuditResponse) => (error ? reject(error) : resolve(response))));

  before(async () => {
    collector = new SyslogCollector();
    await collector.start();
    // Small files, so a few dozen calls rotate the trail several times.
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '2x1', HSMB_FAULT_INJECTION: '1' }, config: { routing: { slowStartMs: 0 }, audit: { rotateBytes: 4096, syslog: [{ address: `127.0.0.1:${String(collector.port)}`, bufferBytes: 1024 * 1024 }] } } });
    audit = new AuditServiceClient(t.broker.address, credentials.createInsecure());
    await t.clients.keys.createKey({ keyId: 'vpc-a/orders', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
  });

  after(async () => {
    audit.close();
    await t.dispose();
    await collector.stop();
  });

  it('records every call with who, what, which key and appliance, the outcome and before/after states', async () => {
    const plaintext = Buffer.from(`order-plaintext-${randomBytes(8).toString('hex')}`);
    plaintexts.push(plaintext);
    const sealed = await t.clients.crypto.encrypt({ keyId: 'vpc-a/orders', plaintext, encryptionContext: { tenant: 'a' } });
    await t.clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: { tenant: 'a' } });
    const tampered = Buffer.from(sealed.ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    await assert.rejects(t.clients.crypto.decrypt({ ciphertext: tampered, encryptionContext: { tenant: 'a' } }));
    const dataKey = await t.clients.crypto.generateDataKey({ keyId: 'vpc-a/orders', keySpec: DataKeySpec.AES_256, encryptionContext: {} });
    plaintexts.push(dataKey.plaintext);
    await t.clients.keys.disableKey({ keyId: 'vpc-a/orders' });
    await t.clients.keys.enableKey({ keyId: 'vpc-a/orders' });
    const [appliance] = t.broker.fleet.appliances;
    assert.ok(appliance);
    await t.clients.fleet.drainAppliance({ applianceId: appliance.id });
    await t.clients.fleet.undrainAppliance({ applianceId: appliance.id });

    const records = entriesOf(files()).filter((entry): entry is AuditCallRecord => entry.type === 'call');
    const byOperation = (operation: string): AuditCallRecord[] => records.filter((record) => record.operation === operation);
    const applianceIds = t.broker.fleet.appliances.map((each) => each.id);
    const [encrypt] = byOperation('Encrypt');
    assert.ok(encrypt);
    assert.equal(encrypt.identity, 'anonymous');
    assert.match(encrypt.peer, /127\.0\.0\.1/);
    assert.equal(encrypt.keyId, 'vpc-a/orders');
    assert.equal(encrypt.keyVersion, 1);
    assert.equal(encrypt.code, 0);
    assert.equal(encrypt.appliances.length, 1);
    assert.ok(applianceIds.includes(encrypt.appliances[0] ?? ''), `${String(encrypt.appliances)} is a fleet appliance`);
    assert.ok(encrypt.latencyMs > 0);
    assert.match(encrypt.requestId, /^[0-9a-f-]{36}$/);
    const [opened, refused] = byOperation('Decrypt');
    assert.deepEqual([opened?.code, opened?.keyId, opened?.keyVersion], [0, 'vpc-a/orders', 1]);
    assert.deepEqual([refused?.code, refused?.reason, refused?.keyId], [3, 'INVALID_CIPHERTEXT', 'vpc-a/orders']);
    assert.deepEqual([byOperation('DisableKey')[0]?.before?.['keyState'], byOperation('DisableKey')[0]?.after?.['keyState']], ['ENABLED', 'DISABLED']);
    assert.deepEqual([byOperation('EnableKey')[0]?.before?.['keyState'], byOperation('EnableKey')[0]?.after?.['keyState']], ['DISABLED', 'ENABLED']);
    assert.deepEqual([byOperation('DrainAppliance')[0]?.before?.['drained'], byOperation('DrainAppliance')[0]?.after?.['drained']], [false, true]);
    assert.equal(byOperation('CreateKey')[0]?.after?.['keyState'], 'ENABLED');
  });

  it('names every appliance a call was tried on, in order, when it fails over', async () => {
    // Encrypt prefers the local zone's appliance: make it fail, so the call moves on.
    const local = t.broker.fleet.appliances.find((each) => each.zone === 'az-a');
    const other = t.broker.fleet.appliances.find((each) => each.zone !== 'az-a');
    assert.ok(local && other);
    await t.clients.fleet.injectFault({ applianceId: local.id, kind: 1, probability: 1, latencyMs: 0, durationMs: 0 });
    try {
      const sealed = await t.clients.crypto.encrypt({ keyId: 'vpc-a/orders', plaintext: Buffer.from('failover'), encryptionContext: {} });
      assert.equal(sealed.keyId, 'vpc-a/orders');
    } finally {
      await t.clients.fleet.clearFaults({ applianceId: '' });
    }
    const records = entriesOf(files()).filter((entry): entry is AuditCallRecord => entry.type === 'call');
    const failedOver = records.filter((record) => record.operation === 'Encrypt').at(-1);
    assert.deepEqual(failedOver?.appliances, [local.id, other.id]);
    assert.equal(failedOver?.code, 0);
    const injected = records.find((record) => record.operation === 'InjectFault');
    assert.deepEqual([injected?.before?.['faults'], injected?.after?.['faults']], [[], ['ERROR']]);
  });

  it('takes the caller request id and refuses nothing it cannot name', async () => {
    const metadata = new Metadata();
    metadata.set('x-request-id', 'req-audit-42');
    await new Promise<void>((resolve, reject) =>
      audit.getAuditStatus({}, metadata, (error: ServiceError | null) => (error ? reject(error) : resolve())),
    );
    const status = entriesOf(files()).filter((entry): entry is AuditCallRecord => entry.type === 'call' && entry.operation === 'GetAuditStatus');
    assert.equal(status.at(-1)?.requestId, 'req-audit-42');
  });

  it('signs checkpoints with an HSM key that callers cannot see, and the rotated files verify as one chain', async () => {
    for (let index = 0; index < 30; index++) {
      const plaintext = Buffer.from(`bulk-secret-${String(index)}-${randomBytes(6).toString('hex')}`);
      plaintexts.push(plaintext);
      await t.clients.crypto.encrypt({ keyId: 'vpc-a/orders', plaintext, encryptionContext: {} });
    }
    await t.broker.audit.checkpoint();
    const status = t.broker.audit.status();
    assert.match(status.signingKeyFingerprint, /^[0-9a-f]{64}$/);
    assert.equal(status.lastCheckpointSeq, status.lastSeq - 1);
    const paths = files();
    assert.ok(paths.length >= 3, `rotated into ${String(paths.length)} files`);
    const result = verifyAuditTrail(
      [...paths].reverse().map((path) => ({ name: path, content: readFileSync(path, 'utf8') })),
      { keyFingerprint: status.signingKeyFingerprint },
    );
    assert.equal(result.ok, true, JSON.stringify(result.problems));
    assert.ok(result.checkpoints >= 1);
    const checkpoint = entriesOf(paths).find((entry): entry is AuditCheckpoint => entry.type === 'checkpoint');
    assert.equal(keyFingerprint(Buffer.from(checkpoint?.key.spki ?? '', 'base64')), status.signingKeyFingerprint);
    // The signing key is the broker's: no caller lists it.
    const listed = await t.clients.keys.listKeys({ pageSize: 100, pageToken: '' });
    assert.deepEqual(listed.keys.map((key) => key.keyId), ['vpc-a/orders']);

    // One edited record in the real file is found, at its line.
    const middle = paths[1] ?? '';
    // Which record sits where depends on timing (checkpoints, sweeps), so
    // the first successful call's record in that file is the one edited.
    const lines = readFileSync(middle, 'utf8').split('\n');
    const edited = lines.findIndex((line) => line.includes('"code":0'));
    assert.ok(edited >= 0, `no successful call recorded in ${middle}`);
    lines[edited] = (lines[edited] ?? '').replace('"code":0', '"code":5');
    const tampered = verifyAuditTrail(paths.map((path) => ({ name: path, content: path === middle ? lines.join('\n') : readFileSync(path, 'utf8') })));
    assert.deepEqual(tampered.problems.map((problem) => [problem.kind, problem.file, problem.line]), [['changed', middle, edited + 1]]);
  });

  it('forwards every record to the syslog collector, buffers through an outage and delivers afterwards', async () => {
    const lastSeq = (): number => t.broker.audit.status().lastSeq;
    const seqs = (): Set<number> => new Set(collector.messages.map((message) => Number(/seq="(\d+)"/.exec(message.structuredData)?.[1])));
    const upTo = lastSeq();
    await collector.waitFor(() => seqs().has(upTo));
    const first = collector.messages[0];
    assert.equal(first?.version, 1);
    assert.equal(first?.appName, 'hsm-broker');
    const lineOne = readFileSync(files()[0] ?? '', 'utf8').split('\n')[0];
    assert.equal(first?.msg, lineOne, 'MSG is the line exactly as the file holds it');

    await collector.stop();
    await until(() => t.broker.audit.status().collectors[0]?.connected === false);
    const duringOutage: Promise<unknown>[] = [];
    for (let index = 0; index < 25; index++) {
      const plaintext = Buffer.from(`outage-secret-${String(index)}-${randomBytes(6).toString('hex')}`);
      plaintexts.push(plaintext);
      duringOutage.push(t.clients.crypto.encrypt({ keyId: 'vpc-a/orders', plaintext, encryptionContext: {} }));
    }
    const outcomes = await Promise.allSettled(duringOutage);
    assert.deepEqual(outcomes.filter((outcome) => outcome.status === 'rejected'), [], 'no crypto call failed during the outage');
    const buffered = t.broker.audit.status().collectors[0];
    assert.ok((buffered?.bufferedBytes ?? 0) > 0, 'records wait in the disk buffer');
    assert.equal(buffered?.droppedTotal, 0);
    const afterOutage = lastSeq();

    await collector.start();
    await collector.waitFor(() => seqs().has(afterOutage));
    const received = seqs();
    for (let seq = 1; seq <= afterOutage; seq++) assert.ok(received.has(seq), `seq ${String(seq)} reached the collector`);
    await until(() => t.broker.audit.status().collectors[0]?.bufferedBytes === 0);
    // The collector's copy is itself a verifiable chain.
    const copy = [...new Map(collector.messages.map((message) => [Number(/seq="(\d+)"/.exec(message.structuredData)?.[1]), message.msg])).entries()]
      .sort(([a], [b]) => a - b)
      .map(([, msg]) => `${msg}\n`)
      .join('');
    const verified = verifyAuditTrail([{ name: 'collector', content: copy }]);
    assert.equal(verified.ok, true, JSON.stringify(verified.problems));
  });

  it('answers SearchAudit by operation, key and result, and TailAudit with the backlog then live records', async () => {
    const failed = await search({ filter: { identity: '', operation: 'Decrypt', keyId: '', result: AuditResult.FAILED } });
    assert.deepEqual(failed.records.map((record) => record.reason), ['INVALID_CIPHERTEXT']);
    const encrypts = await search({ filter: { identity: 'anonymous', operation: 'Encrypt', keyId: 'vpc-a/orders', result: AuditResult.OK }, limit: 5 });
    assert.equal(encrypts.records.length, 5);
    assert.equal(encrypts.truncated, true);
    assert.ok(encrypts.records.every((record) => record.operation === 'Encrypt' && record.keyVersion === 1));
    const future = await search({ startTime: new Date(Date.now() + 3_600_000) });
    assert.deepEqual(future.records, []);

    const stream = audit.tailAudit({ filter: { identity: '', operation: 'GenerateRandom', keyId: '', result: AuditResult.UNSPECIFIED }, backlog: 10 });
    const seen: AuditRecord[] = [];
    const arrived = new Promise<void>((resolve) => {
      stream.on('data', (response: { record?: AuditRecord }) => {
        if (response.record) seen.push(response.record);
        if (seen.length === 2) resolve();
      });
    });
    stream.on('error', () => undefined);
    await t.clients.crypto.generateRandom({ numBytes: 16 });
    await t.clients.crypto.generateRandom({ numBytes: 16 });
    await arrived;
    stream.cancel();
    assert.deepEqual(seen.map((record) => record.operation), ['GenerateRandom', 'GenerateRandom']);
    assert.ok((seen[0]?.seq ?? 0) < (seen[1]?.seq ?? 0));
  });

  it('never writes plaintext, data keys or PINs to the trail, the syslog buffer or the collector', () => {
    const secrets = filesUnder(t.dataDir)
      .filter((path) => path.includes('secrets') && path.endsWith('.json'))
      .flatMap((path) => Object.values(JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>));
    assert.ok(secrets.length >= 4, 'the PINs of the fleet were found to search for');
    const needles = [...plaintexts.flatMap((plaintext) => [plaintext.toString('utf8'), plaintext.toString('base64'), plaintext.toString('hex')]), ...secrets];
    const haystacks = [
      ...filesUnder(join(t.dataDir, 'audit')).filter((path) => statSync(path).isFile()).map((path) => readFileSync(path).toString('latin1')),
      Buffer.concat(collector.received).toString('latin1'),
    ];
    for (const needle of needles) for (const haystack of haystacks) assert.equal(haystack.includes(needle), false, 'a secret reached the audit trail');
  });
});
