import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import type { ChannelCredentials, ServiceError } from '@grpc/grpc-js';
import { retryAfterSecondsTrailer, retryAfterTrailer } from '@hsm-broker/errors';
import { encodeHeader } from '@hsm-broker/keys';
import { BackupServiceClient, KeySpec, KeyUsage } from '@hsm-broker/proto';
import { connect, startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker, TestClients } from './testing/broker-harness.js';
import { TestPki, replaceFile } from './testing/test-pki.js';

const day = 86_400_000;

type Answer = Awaited<ReturnType<typeof statusOf>>;

const policy = `# two VPCs with separate key namespaces, and the operator roles
grants:
  - identity: "spiffe://corp/vpc-a/*"
    roles: [crypto-user]
    keys: ["vpc-a/*"]
  - identity: "spiffe://corp/vpc-a/*"
    roles: [auditor]
    keys: ["vpc-a/*"]
  - identity: "spiffe://corp/vpc-b/*"
    roles: [crypto-user]
    keys: ["vpc-b/*"]
    conditions:
      encryption_context: { tenant: b }
  - identity: "spiffe://corp/vpc-q/*"
    roles: [crypto-user]
    keys: ["vpc-q/*"]
  - identity: "spiffe://corp/security/officer"
    roles: [key-admin]
    keys: ["*"]
  - identity: "spiffe://corp/sre/*"
    roles: [fleet-operator, auditor]
  - identity: "spiffe://corp/audit/reader"
    roles: [auditor]
  - identity: "spiffe://corp/backup/officer"
    roles: [backup-officer]
quotas:
  - identity: "spiffe://corp/vpc-q/*"
    symmetric: { ratePerSecond: 0.001, burst: 20 }
`;

function createBackup(address: string, creds: ChannelCredentials): Promise<{ code: number; chunks: number }> {
  const client = new BackupServiceClient(address, creds);
  return new Promise((resolve) => {
    let chunks = 0;
    const stream = client.createBackup({}, new Metadata(), { deadline: Date.now() + 120_000 });
    stream.on('data', (response: { chunk?: Buffer }) => {
      if (response.chunk) chunks += 1;
    });
    stream.on('error', (error: ServiceError) => {
      client.close();
      resolve({ code: error.code, chunks });
    });
    stream.on('end', () => {
      client.close();
      resolve({ code: status.OK, chunks });
    });
  });
}

/** The message with the key id taken out, so that refusals about different keys can be compared. */
function withoutKey(message: string, keyId: string): string {
  return message.replace(keyId, '<key>');
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('access control: mutual TLS identities, default-deny policy, quotas', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-access-'));
  const pki = new TestPki(join(dir, 'pki'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, policy);
  let t: TestBroker;
  const open: TestClients[] = [];
  const as = (identity: string): TestClients => {
    const clients = connect(t.broker.address, 60_000, pki.client(identity));
    open.push(clients);
    return clients;
  };
  let officer: TestClients;
  let vpcA: TestClients;
  let vpcB: TestClients;

  before(async () => {
    t = await startTestBroker({
      env: {
        // Two appliances, so that the fleet operator can drain one (the last serving one may not be drained).
        HSMB_LOCAL_FLEET: '2x1',
        HSMB_WORKERS_PER_APPLIANCE: '1',
        HSMB_MIN_ZONES: '1',
        HSMB_MIN_REPLICAS: '1',
        HSMB_SERVER_TLS_CERT: pki.serverCertFile,
        HSMB_SERVER_TLS_KEY: pki.serverKeyFile,
        HSMB_SERVER_TLS_CLIENT_CA: pki.caFile,
        HSMB_POLICY: policyFile,
      },
      config: { reloadIntervalMs: 100 },
    });
    officer = as('spiffe://corp/security/officer');
    vpcA = as('spiffe://corp/vpc-a/payments');
    vpcB = as('spiffe://corp/vpc-b/orders');
    for (const keyId of ['vpc-a/data', 'vpc-b/data', 'vpc-b/disabled', 'vpc-q/data']) {
      await officer.keys.createKey({ keyId, keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    }
    await officer.keys.createKey({ keyId: 'vpc-b/signing', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await officer.keys.disableKey({ keyId: 'vpc-b/disabled' });
  });

  after(async () => {
    for (const clients of open) clients.close();
    await t.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names each caller by its SPIFFE ID: each VPC uses its own keys, and cross access is denied naming identity and operation', async () => {
    const plaintext = Buffer.from('card 4111');
    const a = await vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext, encryptionContext: {} });
    assert.deepEqual((await vpcA.crypto.decrypt({ ciphertext: a.ciphertext, encryptionContext: {} })).plaintext, plaintext);
    const b = await vpcB.crypto.encrypt({ keyId: 'vpc-b/data', plaintext, encryptionContext: { tenant: 'b' } });
    assert.deepEqual((await vpcB.crypto.decrypt({ ciphertext: b.ciphertext, encryptionContext: { tenant: 'b' } })).plaintext, plaintext);

    const crossEncrypt = await statusOf(vpcA.crypto.encrypt({ keyId: 'vpc-b/data', plaintext, encryptionContext: { tenant: 'b' } }));
    assert.equal(crossEncrypt.code, status.PERMISSION_DENIED);
    assert.match(crossEncrypt.message, /spiffe:\/\/corp\/vpc-a\/payments may not call Encrypt/);
    const crossDecrypt = await statusOf(vpcA.crypto.decrypt({ ciphertext: b.ciphertext, encryptionContext: { tenant: 'b' } }));
    assert.equal(crossDecrypt.code, status.PERMISSION_DENIED);
    assert.match(crossDecrypt.message, /spiffe:\/\/corp\/vpc-a\/payments may not call Decrypt/);
    assert.equal((await statusOf(vpcB.crypto.decrypt({ ciphertext: a.ciphertext, encryptionContext: {} }))).code, status.PERMISSION_DENIED);
    assert.equal((await statusOf(vpcB.crypto.reEncrypt({ ciphertext: b.ciphertext, sourceEncryptionContext: { tenant: 'b' }, destinationKeyId: 'vpc-a/data', destinationEncryptionContext: {} }))).code, status.PERMISSION_DENIED);
  });

  it('applies encryption-context conditions: every listed pair must be in the call', async () => {
    const missing = await statusOf(vpcB.crypto.encrypt({ keyId: 'vpc-b/data', plaintext: Buffer.from('x'), encryptionContext: {} }));
    assert.equal(missing.code, status.PERMISSION_DENIED);
    assert.equal((await statusOf(vpcB.crypto.encrypt({ keyId: 'vpc-b/data', plaintext: Buffer.from('x'), encryptionContext: { tenant: 'a' } }))).code, status.PERMISSION_DENIED);
    const extra = await vpcB.crypto.encrypt({ keyId: 'vpc-b/data', plaintext: Buffer.from('x'), encryptionContext: { tenant: 'b', order: '7' } });
    assert.equal(extra.keyId, 'vpc-b/data');
  });

  it('answers a key without a grant identically whether it exists, is disabled, has another usage or does not exist, forged headers included', async () => {
    const refusal = async (keyId: string): Promise<{ code: number | undefined; message: string; reason: unknown }> => {
      const answer = await statusOf(vpcA.crypto.encrypt({ keyId, plaintext: Buffer.from('x'), encryptionContext: { tenant: 'b' } }));
      return { code: answer.code, message: withoutKey(answer.message, keyId), reason: answer.metadata['hsmb-reason'] };
    };
    const existing = await refusal('vpc-b/data');
    assert.equal(existing.code, status.PERMISSION_DENIED);
    assert.equal(existing.reason, 'ACCESS_DENIED');
    for (const keyId of ['vpc-b/disabled', 'vpc-b/signing', 'vpc-b/no-such-key']) assert.deepEqual(await refusal(keyId), existing, keyId);

    const forged = async (keyId: string): Promise<{ code: number | undefined; message: string; reason: unknown }> => {
      const ciphertext = Buffer.concat([encodeHeader(keyId, 1), randomBytes(12 + 32)]);
      const answer = await statusOf(vpcA.crypto.decrypt({ ciphertext, encryptionContext: {} }));
      return { code: answer.code, message: withoutKey(answer.message, keyId), reason: answer.metadata['hsmb-reason'] };
    };
    const forgedExisting = await forged('vpc-b/data');
    assert.equal(forgedExisting.code, status.PERMISSION_DENIED);
    for (const keyId of ['vpc-b/disabled', 'vpc-b/signing', 'vpc-b/no-such-key']) assert.deepEqual(await forged(keyId), forgedExisting, keyId);
    // With a grant, the same forged header gets past authorization and fails on the ciphertext itself.
    const own = await statusOf(vpcA.crypto.decrypt({ ciphertext: Buffer.concat([encodeHeader('vpc-a/data', 1), randomBytes(44)]), encryptionContext: {} }));
    assert.notEqual(own.code, status.PERMISSION_DENIED);
  });

  it('shows ListKeys only the keys the caller may see', async () => {
    const listed = await vpcA.keys.listKeys({ pageSize: 100, pageToken: '' });
    assert.deepEqual(listed.keys.map((key) => key.keyId), ['vpc-a/data']);
    const all = await officer.keys.listKeys({ pageSize: 100, pageToken: '' });
    assert.ok(all.keys.length >= 5);
    // Paging, even from a token the caller made up, shows and names only keys the caller may see.
    const decoded = (token: string): string => Buffer.from(token, 'base64url').toString('utf8');
    const first = await vpcA.keys.listKeys({ pageSize: 1, pageToken: '' });
    assert.deepEqual(first.keys.map((key) => key.keyId), ['vpc-a/data']);
    assert.ok(first.nextPageToken === '' || decoded(first.nextPageToken) === 'vpc-a/data');
    const forged = await vpcA.keys.listKeys({ pageSize: 1, pageToken: Buffer.from('a', 'utf8').toString('base64url') });
    assert.deepEqual(forged.keys.map((key) => key.keyId), ['vpc-a/data']);
    for (const token of [first.nextPageToken, forged.nextPageToken].filter((value) => value !== '')) {
      const after = await vpcA.keys.listKeys({ pageSize: 1, pageToken: token });
      assert.deepEqual(after.keys, []);
      assert.equal(after.nextPageToken, '');
    }
    assert.equal((await statusOf(vpcA.keys.describeKey({ keyId: 'vpc-b/data' }))).code, status.PERMISSION_DENIED);
    assert.equal((await statusOf(vpcA.keys.scheduleKeyDeletion({ keyId: 'vpc-a/data', pendingWindowDays: 7 }))).code, status.PERMISSION_DENIED);
  });

  it('lets the auditor read but not decrypt', async () => {
    const auditor = as('spiffe://corp/audit/reader');
    const ciphertext = (await vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext: Buffer.from('x'), encryptionContext: {} })).ciphertext;
    assert.ok((await auditor.fleet.getFleetStatus({})).appliances.length > 0);
    assert.equal((await auditor.keys.describeKey({ keyId: 'vpc-b/data' })).keyMetadata?.keyId, 'vpc-b/data');
    assert.ok((await auditor.keys.listKeys({ pageSize: 100, pageToken: '' })).keys.length >= 5);
    const decrypt = await statusOf(auditor.crypto.decrypt({ ciphertext, encryptionContext: {} }));
    assert.equal(decrypt.code, status.PERMISSION_DENIED);
    assert.match(decrypt.message, /spiffe:\/\/corp\/audit\/reader may not call Decrypt/);
    assert.equal((await statusOf(auditor.keys.disableKey({ keyId: 'vpc-a/data' }))).code, status.PERMISSION_DENIED);
    assert.equal((await statusOf(auditor.fleet.drainAppliance({ applianceId: t.broker.fleet.appliances[0]?.id ?? '' }))).code, status.PERMISSION_DENIED);
  });

  it('lets the fleet operator drain but not decrypt or back up, and the backup officer back up but not decrypt', async () => {
    const sre = as('spiffe://corp/sre/oncall');
    const applianceId = t.broker.fleet.appliances[0]?.id ?? '';
    assert.equal((await sre.fleet.drainAppliance({ applianceId })).appliance?.drained, true);
    assert.equal((await sre.fleet.undrainAppliance({ applianceId })).appliance?.drained, false);
    const ciphertext = (await vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext: Buffer.from('x'), encryptionContext: {} })).ciphertext;
    assert.equal((await statusOf(sre.crypto.decrypt({ ciphertext, encryptionContext: {} }))).code, status.PERMISSION_DENIED);
    assert.equal((await createBackup(t.broker.address, pki.client('spiffe://corp/sre/oncall'))).code, status.PERMISSION_DENIED);

    const backupCreds = pki.client('spiffe://corp/backup/officer');
    const backup = await createBackup(t.broker.address, backupCreds);
    assert.equal(backup.code, status.OK);
    assert.ok(backup.chunks > 0);
    const officerClients = connect(t.broker.address, 60_000, backupCreds);
    open.push(officerClients);
    assert.equal((await statusOf(officerClients.crypto.decrypt({ ciphertext, encryptionContext: {} }))).code, status.PERMISSION_DENIED);
    assert.equal((await statusOf(officerClients.keys.listKeys({ pageSize: 10, pageToken: '' }))).code, status.PERMISSION_DENIED);
  });

  it('refuses at the handshake clients with no certificate, an expired or not-yet-valid one, one from another CA, plaintext, and TLS below 1.3', async () => {
    const refused = async (creds: ChannelCredentials): Promise<number | undefined> => {
      const clients = connect(t.broker.address, 5_000, creds);
      try {
        return (await statusOf(clients.fleet.getFleetStatus({}))).code;
      } finally {
        clients.close();
      }
    };
    const sre = 'spiffe://corp/sre/oncall';
    assert.equal(await refused(pki.anonymous()), status.UNAVAILABLE);
    assert.equal(await refused(pki.client(sre, { notBefore: new Date(Date.now() - 3 * day), notAfter: new Date(Date.now() - day) })), status.UNAVAILABLE);
    assert.equal(await refused(pki.client(sre, { notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 2 * day) })), status.UNAVAILABLE);
    const stranger = new TestPki(join(dir, 'stranger'));
    assert.equal(await refused(stranger.client(sre, {}, pki.ca.certificatePem)), status.UNAVAILABLE);
    assert.equal(await refused(credentials.createInsecure()), status.UNAVAILABLE);
    const port = t.broker.port;
    // A valid client certificate, so that only the protocol version differs between the two attempts.
    const valid = pki.issue({ commonName: 'oncall', uris: [sre] });
    const handshake = (maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> =>
      new Promise((resolve) => {
        const socket = tlsConnect(
          { host: '127.0.0.1', port, maxVersion, ca: pki.ca.certificatePem, cert: valid.certificatePem, key: valid.privateKeyPem, ALPNProtocols: ['h2'] },
          () => {
            const protocol = socket.getProtocol() ?? 'unknown';
            socket.destroy();
            resolve(protocol);
          },
        );
        socket.on('error', (error: Error) => resolve(`refused: ${error.message}`));
      });
    assert.equal(await handshake('TLSv1.3'), 'TLSv1.3');
    assert.match(await handshake('TLSv1.2'), /^refused: .*(protocol version|unsupported protocol)/i);
  });

  it('refuses an exhausted quota with RESOURCE_EXHAUSTED and a retry-after trailer, before any appliance, and leaves other identities untouched', async (context) => {
    const noisy = as('spiffe://corp/vpc-q/batch');
    // Requests that reached any appliance, background probes aside.
    const fleetRequests = (): number => t.broker.fleet.appliances.reduce((sum, appliance) => sum + t.broker.fleet.applianceSnapshot(appliance).requestsTotal, 0);
    const requestsBefore = fleetRequests();
    const latencies: number[] = [];
    const quiet = async (): Promise<number> => {
      let ok = 0;
      for (let index = 0; index < 40; index += 1) {
        const started = performance.now();
        await vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext: Buffer.from('x'), encryptionContext: {} });
        latencies.push(performance.now() - started);
        ok += 1;
      }
      return ok;
    };
    const flood = Promise.all(Array.from({ length: 200 }, () => statusOf(noisy.crypto.encrypt({ keyId: 'vpc-q/data', plaintext: Buffer.from('x'), encryptionContext: {} })).catch((): Answer => ({ code: status.OK, message: '', metadata: {} }))));
    const [answers, quietOk] = await Promise.all([flood, quiet()]);
    const exhausted = answers.filter((answer) => answer.code === status.RESOURCE_EXHAUSTED);
    // statusOf throws on success; the catch above turned each success into OK.
    const admitted = answers.filter((answer) => answer.code === status.OK);
    assert.equal(admitted.length, 20, 'the burst of 20 is admitted');
    assert.equal(exhausted.length, 180);
    const [first] = exhausted;
    assert.ok(first);
    assert.equal(first.metadata['hsmb-reason'], 'QUOTA_EXHAUSTED');
    assert.ok(Number(first.metadata[retryAfterTrailer]) > 0);
    assert.ok(Number(first.metadata[retryAfterSecondsTrailer]) >= 1, 'retry-after in whole seconds');
    assert.match(first.message, /spiffe:\/\/corp\/vpc-q\/batch.*symmetric/);
    assert.equal(quietOk, 40, 'the other VPC was never refused');
    // Refusals never reach an appliance: only admitted calls (20 + 40) did.
    assert.equal(fleetRequests() - requestsBefore, 60);
    latencies.sort((x, y) => x - y);
    context.diagnostic(`vpc-a p99 during vpc-q's flood: ${(latencies[Math.floor(latencies.length * 0.99)] ?? 0).toFixed(1)} ms`);
  });

  it('reloads the policy when its file changes, and keeps the previous one when the new file is invalid, naming line and field', async () => {
    const access = t.broker.access;
    assert.ok(access);
    const reloads = access.reloads;
    replaceFile(policyFile, `${policy}\n  - identity: "x"\n    bogus: 1\n`.replace('roles: [backup-officer]', 'roles: [backup-oficer]'));
    await waitFor(() => access.lastError !== undefined, 'the bad policy to be refused');
    assert.match(access.lastError ?? '', /policy\.yaml line \d+: grants\[7\]\.roles\[0\]: "backup-oficer" is not a role/);
    assert.equal(access.reloads, reloads);
    await vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext: Buffer.from('x'), encryptionContext: {} });

    replaceFile(policyFile, policy.replace('keys: ["vpc-a/*"]\n  - identity: "spiffe://corp/vpc-a/*"', 'keys: ["vpc-a/other/*"]\n  - identity: "spiffe://corp/vpc-a/*"'));
    await waitFor(() => access.reloads === reloads + 1, 'the new policy');
    assert.equal((await statusOf(vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext: Buffer.from('x'), encryptionContext: {} }))).code, status.PERMISSION_DENIED);
    replaceFile(policyFile, policy);
    await waitFor(() => access.reloads === reloads + 2, 'the original policy');
    await vpcA.crypto.encrypt({ keyId: 'vpc-a/data', plaintext: Buffer.from('x'), encryptionContext: {} });
  });

  it('takes new certificates and a new client CA from their files for new handshakes, without a restart', async () => {
    const next = new TestPki(join(dir, 'next'), 'next CA');
    const before = pki.client('spiffe://corp/sre/oncall');
    replaceFile(pki.serverKeyFile, '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
    // A broken key is refused; the old material stays and old clients still connect.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await connectAndStatus(t.broker.address, before)), status.OK);
    replaceFile(pki.serverCertFile, readFileSync(next.serverCertFile, 'utf8'));
    replaceFile(pki.serverKeyFile, readFileSync(next.serverKeyFile, 'utf8'));
    replaceFile(pki.caFile, next.ca.certificatePem);
    const fresh = next.client('spiffe://corp/sre/oncall');
    await waitFor(async () => (await connectAndStatus(t.broker.address, fresh)) === status.OK, 'the new certificates to serve');
    assert.equal(await connectAndStatus(t.broker.address, pki.client('spiffe://corp/sre/oncall')), status.UNAVAILABLE);
  });
});

async function connectAndStatus(address: string, creds: ChannelCredentials): Promise<number | undefined> {
  const clients = connect(address, 5_000, creds);
  try {
    await clients.fleet.getFleetStatus({});
    return status.OK;
  } catch (error: unknown) {
    return (error as Partial<ServiceError>).code;
  } finally {
    clients.close();
  }
}
