import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeySpec, KeyUsage, createBrokerClient, tlsCredentials, type BrokerClient } from '@hsm-broker/client';
import { BrokerError, Code } from '@hsm-broker/errors';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { runHsmctl } from './hsmctl-run.js';
import { runProcess, workspaceRoot, type ProcessResult } from './process-run.js';
import { temporaryDirectory, type TemporaryDirectory } from './temporary-directory.js';

// The README's mTLS quick start, as an operator types it: hsmctl makes the
// development CA and certificates, the broker serves mutual TLS with the
// sample policy, and hsmctl calls it under two identities.

function hsmctlOffline(args: readonly string[]): Promise<ProcessResult> {
  return runProcess(process.execPath, ['apps/hsmctl/dist/main.js', ...args]);
}

function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

describe('mTLS quick start: hsmctl pki, the sample policy, calls under two identities', { timeout: 600_000 }, () => {
  let dir: TemporaryDirectory;
  let target: BrokerUnderTest;
  const as = (name: string, args: readonly string[]): Promise<ProcessResult> =>
    runHsmctl(target.address, ['--tls-ca', dir.file('ca.pem'), '--tls-cert', dir.file(`${name}.pem`), '--tls-key', dir.file(`${name}.key`), ...args]);

  before(async () => {
    dir = temporaryDirectory();
    succeeded(await hsmctlOffline(['pki', 'init', '--dir', dir.path]), 'pki init');
    for (const identity of ['spiffe://corp/security/officer', 'spiffe://corp/vpc-a/payments', 'spiffe://corp/vpc-b/orders']) {
      assert.match(succeeded(await hsmctlOffline(['pki', 'issue', identity, '--dir', dir.path]), 'pki issue'), new RegExp(`identity: ${identity}`));
    }
    target = await startBrokerUnderTest({
      env: {
        HSMB_SERVER_TLS_CERT: dir.file('server.pem'),
        HSMB_SERVER_TLS_KEY: dir.file('server.key'),
        HSMB_SERVER_TLS_CLIENT_CA: dir.file('ca.pem'),
        HSMB_POLICY: resolve(workspaceRoot, 'examples/policies/two-vpcs.yaml'),
      },
    });
  });

  after(async () => {
    await target?.dispose();
    await dir?.[Symbol.asyncDispose]();
  });

  it('lets the officer create a key, VPC A use it, and refuses VPC B and callers without a certificate', async () => {
    succeeded(await as('officer', ['keys', 'create', '--spec', 'aes_256', '--usage', 'encrypt-decrypt', '--key-id', 'vpc-a/cards']), 'keys create');
    const ciphertext = (await as('payments', ['encrypt', '--key-id', 'vpc-a/cards', '--data', 'pan 4111', '--output', 'base64'])).stdout.toString('utf8').trim();
    assert.ok(ciphertext.length > 0);
    assert.equal(succeeded(await as('payments', ['decrypt', '--data-base64', ciphertext, '--output', 'raw']), 'decrypt'), 'pan 4111');

    const cross = await as('orders', ['decrypt', '--data-base64', ciphertext, '--context', 'tenant=b']);
    assert.notEqual(cross.status, 0);
    assert.match(cross.stderr, /PERMISSION_DENIED.*spiffe:\/\/corp\/vpc-b\/orders may not call Decrypt/);
    const officerDecrypt = await as('officer', ['decrypt', '--data-base64', ciphertext]);
    assert.match(officerDecrypt.stderr, /PERMISSION_DENIED/);

    const anonymous = await runHsmctl(target.address, ['--tls-ca', dir.file('ca.pem'), 'keys', 'list']);
    assert.notEqual(anonymous.status, 0);
    assert.match(anonymous.stderr, /UNAVAILABLE/);
  });

  it('admits registry rebuild for the key administrator, refuses a crypto user', async () => {
    const refused = await as('payments', ['registry', 'rebuild', '--dry-run']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /PERMISSION_DENIED.*spiffe:\/\/corp\/vpc-a\/payments may not call RebuildRegistry/);
    const officer = succeeded(await as('officer', ['registry', 'rebuild', '--dry-run']), 'registry rebuild as the officer');
    assert.match(officer, /^Would register 0 keys from 3 appliances/);
    assert.match(officer, /Already registered, left unchanged: vpc-a\/cards/);
  });

  it('answers the image health probe (grpc.health.v1) over mutual TLS, as the Kubernetes readiness probe runs it', async () => {
    const probe = (args: readonly string[]): Promise<ProcessResult> =>
      runProcess(process.execPath, ['apps/broker/dist/health-probe.js', target.address, ...args]);
    const tls = ['--tls-ca', dir.file('ca.pem'), '--tls-cert', dir.file('payments.pem'), '--tls-key', dir.file('payments.key')];
    succeeded(await probe(tls), 'health probe over mTLS');
    succeeded(await probe([...tls, '--server-name', 'localhost']), 'health probe with --server-name');
    const plaintext = await probe([]);
    assert.equal(plaintext.status, 1, 'a plaintext probe gets no answer from an mTLS broker');
    assert.match(plaintext.stderr, /not serving/);
    const halfTls = await probe(['--tls-ca', dir.file('ca.pem')]);
    assert.equal(halfTls.status, 1);
    assert.match(halfTls.stderr, /--tls-ca, --tls-cert and --tls-key go together/);
  });

  it('serves the client library over mutual TLS, and refuses it without a client certificate or with another CA', async () => {
    const pem = (name: string): Buffer => readFileSync(dir.file(name));
    const clientOf = (material: Parameters<typeof tlsCredentials>[0]): BrokerClient =>
      createBrokerClient({ address: target.address, credentials: tlsCredentials(material), deadlineMs: 10_000 });
    const failure = async (call: Promise<unknown>): Promise<BrokerError> => {
      try {
        await call;
      } catch (error: unknown) {
        return BrokerError.from(error);
      }
      assert.fail('the call succeeded');
    };

    const officer = clientOf({ caCert: pem('ca.pem'), clientCert: pem('officer.pem'), clientKey: pem('officer.key') });
    const payments = clientOf({ caCert: pem('ca.pem'), clientCert: pem('payments.pem'), clientKey: pem('payments.key') });
    const anonymous = clientOf({ caCert: pem('ca.pem') });
    // A second development CA: the broker's certificate does not chain to it.
    const other = temporaryDirectory();
    succeeded(await hsmctlOffline(['pki', 'init', '--dir', other.path]), 'pki init (other CA)');
    const untrusting = clientOf({ caCert: readFileSync(other.file('ca.pem')), clientCert: pem('payments.pem'), clientKey: pem('payments.key') });
    try {
      await officer.createKey({ keyId: 'vpc-a/library', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
      const context = { tenant: 'a' };
      const sealed = await payments.encrypt({ keyId: 'vpc-a/library', plaintext: Buffer.from('over mutual TLS'), encryptionContext: context });
      const opened = await payments.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: context });
      assert.equal(Buffer.from(opened.plaintext).toString('utf8'), 'over mutual TLS');

      const noCertificate = await failure(anonymous.listKeys({}));
      assert.equal(noCertificate.code, Code.UNAVAILABLE, 'no client certificate: refused at the handshake');
      const wrongCa = await failure(untrusting.listKeys({}));
      assert.equal(wrongCa.code, Code.UNAVAILABLE, 'a server certificate from another CA is not trusted');
    } finally {
      for (const client of [officer, payments, anonymous, untrusting]) client.close();
      await other[Symbol.asyncDispose]();
    }
  });
});
