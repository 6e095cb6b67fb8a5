import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient, KMSServiceException } from '@aws-sdk/client-kms';
import { startKmsTestBroker } from '../testing/kms-harness.js';
import type { KmsTestBroker } from '../testing/kms-harness.js';
import { TestPki } from '../testing/test-pki.js';

const service = { accessKeyId: 'AKIAVPCAPAYMENTS', identity: 'spiffe://corp/vpc-a/payments' };
const policy = `grants:
  - identity: "spiffe://corp/vpc-a/payments"
    roles: [crypto-user, key-admin]
    keys: ["*"]
`;

describe('KMS endpoint over TLS with the broker certificate', { timeout: 600_000 }, () => {
  let t: KmsTestBroker;
  let pki: TestPki;
  let pkiDir: string;
  const clients: KMSClient[] = [];
  const client = (url: string, ca: Buffer | undefined): KMSClient => {
    const made = new KMSClient({
      endpoint: url,
      region: 'eu-west-1',
      credentials: { accessKeyId: service.accessKeyId, secretAccessKey: t.secrets.get(service.accessKeyId) ?? '' },
      maxAttempts: 1,
      requestHandler: { httpsAgent: new Agent(ca ? { ca } : {}) },
    });
    clients.push(made);
    return made;
  };

  before(async () => {
    pkiDir = mkdtempSync(join(tmpdir(), 'hsmb-kms-pki-'));
    pki = new TestPki(pkiDir);
    t = await startKmsTestBroker([service], {
      policy,
      env: { HSMB_SERVER_TLS_CERT: pki.serverCertFile, HSMB_SERVER_TLS_KEY: pki.serverKeyFile, HSMB_SERVER_TLS_CLIENT_CA: pki.caFile },
    });
  });
  after(async () => {
    for (const made of clients) made.destroy();
    await t.dispose();
    rmSync(pkiDir, { recursive: true, force: true });
  });

  it('serves https with the broker certificate to a client that trusts its CA', async () => {
    assert.match(t.kmsUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const kms = client(t.kmsUrl, readFileSync(pki.caFile));
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
    const sealed = await kms.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from('over TLS'), EncryptionContext: { tls: 'yes' } }));
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { tls: 'yes' } }));
    assert.equal(Buffer.from(opened.Plaintext ?? []).toString(), 'over TLS');
  });

  it('is refused by a client that does not trust the CA, and does not answer plaintext', async () => {
    const untrusting = await client(t.kmsUrl, undefined).send(new CreateKeyCommand({})).then(() => undefined, (error: unknown) => error);
    assert.ok(untrusting instanceof Error && !(untrusting instanceof KMSServiceException), 'a TLS failure, not a KMS answer');
    const plaintext = await client(t.kmsUrl.replace('https:', 'http:'), undefined).send(new CreateKeyCommand({})).then(() => undefined, (error: unknown) => error);
    assert.ok(plaintext instanceof Error && !(plaintext instanceof KMSServiceException), 'no KMS answer over plaintext');
  });
});
