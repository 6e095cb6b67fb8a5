import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import type { ChannelCredentials, ServiceError } from '@grpc/grpc-js';
import { FleetServiceClient } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

/** Makes a CA, a server certificate for 127.0.0.1 and a client certificate with the openssl CLI. */
function makePki(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'strangerCert' | 'strangerKey', string> {
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test-ca');
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'payments-service']] as const) {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...(name === 'server' ? ['-extfile', 'san.cnf'] : []));
  }
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'stranger.key', '-out', 'stranger.pem', '-days', '2', '-subj', '/CN=stranger');
  return {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    strangerCert: join(dir, 'stranger.pem'),
    strangerKey: join(dir, 'stranger.key'),
  };
}

function fleetStatus(address: string, creds: ChannelCredentials): Promise<number | undefined> {
  const client = new FleetServiceClient(address, creds);
  return new Promise((resolve) => {
    client.getFleetStatus({}, new Metadata(), { deadline: Date.now() + 5000 }, (error: ServiceError | null) => {
      client.close();
      resolve(error ? error.code : status.OK);
    });
  });
}

describe('mutual TLS (certificates made by the openssl CLI)', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-pki-'));
  const pki = makePki(dir);
  let t: TestBroker;
  const policyFile = join(dir, 'policy.yaml');
  // Identity from the subject CN, as the client certificate has no SPIFFE ID.
  writeFileSync(policyFile, 'grants:\n  - identity: payments-service\n    roles: [auditor]\n');

  before(async () => {
    t = await startTestBroker({
      env: {
        HSMB_LOCAL_FLEET: '1x1',
        HSMB_WORKERS_PER_APPLIANCE: '1',
        HSMB_MIN_ZONES: '1',
        HSMB_SERVER_TLS_CERT: pki.serverCert,
        HSMB_SERVER_TLS_KEY: pki.serverKey,
        HSMB_SERVER_TLS_CLIENT_CA: pki.ca,
        HSMB_POLICY: policyFile,
      },
    });
  });

  after(async () => {
    await t.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves clients holding a certificate from the client CA', async () => {
    const creds = credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.clientKey), readFileSync(pki.clientCert));
    assert.equal(await fleetStatus(t.broker.address, creds), status.OK);
  });

  it('refuses clients without a certificate, with a certificate from another CA, and plaintext clients', async () => {
    assert.equal(await fleetStatus(t.broker.address, credentials.createSsl(readFileSync(pki.ca))), status.UNAVAILABLE);
    assert.equal(
      await fleetStatus(t.broker.address, credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.strangerKey), readFileSync(pki.strangerCert))),
      status.UNAVAILABLE,
    );
    assert.equal(await fleetStatus(t.broker.address, credentials.createInsecure()), status.UNAVAILABLE);
  });

  it('the container health probe passes over mutual TLS and fails in plaintext or without a client certificate', async () => {
    // Asynchronously: the broker answers from this very process.
    const probe = (env: Record<string, string>): Promise<{ status: number | null; stderr: string }> => {
      const { HSMB_HEALTH_TLS_CA: _ca, HSMB_HEALTH_TLS_CERT: _cert, HSMB_HEALTH_TLS_KEY: _key, ...rest } = process.env;
      const child = spawn(process.execPath, [fileURLToPath(new URL('./health-probe.js', import.meta.url)), t.broker.address], { env: { ...rest, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
      });
      return new Promise((resolve) => child.on('close', (status) => resolve({ status, stderr })));
    };
    const mutual = await probe({ HSMB_HEALTH_TLS_CA: pki.ca, HSMB_HEALTH_TLS_CERT: pki.clientCert, HSMB_HEALTH_TLS_KEY: pki.clientKey });
    assert.equal(mutual.status, 0, `the probe failed over mutual TLS: ${mutual.stderr}`);
    const plaintext = await probe({});
    assert.equal(plaintext.status, 1, 'a plaintext probe passed against a mutual-TLS broker');
    const anonymous = await probe({ HSMB_HEALTH_TLS_CA: pki.ca });
    assert.equal(anonymous.status, 1, 'a probe without a client certificate passed');
    const half = await probe({ HSMB_HEALTH_TLS_CA: pki.ca, HSMB_HEALTH_TLS_CERT: pki.clientCert });
    assert.match(half.stderr, /HSMB_HEALTH_TLS_CERT and HSMB_HEALTH_TLS_KEY go together/);
  });
});
