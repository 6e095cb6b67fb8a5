import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { startTestBroker } from './broker-harness.js';
import type { TestBroker, TestBrokerOptions } from './broker-harness.js';

/** One KMS access key the test broker knows. */
export interface TestKmsCredential {
  accessKeyId: string;
  identity: string;
}

/** A test broker with its KMS endpoint on a free loopback port. */
export interface KmsTestBroker extends TestBroker {
  /** The endpoint URL to give the AWS SDK. */
  kmsUrl: string;
  region: string;
  account: string;
  /** The secret access key of each configured access key id. */
  secrets: ReadonlyMap<string, string>;
  /** A real AWS SDK client for one access key (the first by default), signing with `secret` if given. */
  kmsClient(accessKeyId?: string, options?: { secret?: string; region?: string; maxAttempts?: number }): KMSClient;
  /** A key's ARN on this endpoint. */
  arn(keyId: string): string;
}

/**
 * Starts a real broker on a real SoftHSM fleet with `kms:` configured:
 * every credential gets a random secret written to a 0600 file, as an
 * operator would.
 * @internal
 */
export async function startKmsTestBroker(credentials: readonly TestKmsCredential[], options: TestBrokerOptions & { policy?: string } = {}): Promise<KmsTestBroker> {
  const secretDir = mkdtempSync(join(tmpdir(), 'hsmb-kms-secrets-'));
  const secrets = new Map<string, string>();
  const region = 'eu-west-1';
  const account = '111122223333';
  const configured = credentials.map((credential) => {
    const secret = randomBytes(30).toString('base64');
    const secretFile = join(secretDir, `${credential.accessKeyId}.secret`);
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    secrets.set(credential.accessKeyId, secret);
    return { accessKeyId: credential.accessKeyId, secretFile, identity: credential.identity };
  });
  const env: Record<string, string> = { HSMB_KMS_LISTEN: '127.0.0.1:0', ...options.env };
  if (options.policy !== undefined) {
    const policyFile = join(secretDir, 'policy.yaml');
    writeFileSync(policyFile, options.policy);
    env['HSMB_POLICY'] = policyFile;
  }
  const t = await startTestBroker({ ...options, env, config: { ...options.config, kms: { region, account, credentials: configured } } });
  const kms = t.broker.kms;
  if (!kms) throw new Error('the broker started without its KMS endpoint');
  const clients: KMSClient[] = [];
  const first = credentials[0]?.accessKeyId ?? '';
  return {
    ...t,
    kmsUrl: kms.url,
    region,
    account,
    secrets,
    kmsClient(accessKeyId = first, clientOptions = {}) {
      const client = new KMSClient({
        endpoint: kms.url,
        region: clientOptions.region ?? region,
        credentials: { accessKeyId, secretAccessKey: clientOptions.secret ?? secrets.get(accessKeyId) ?? 'unknown-secret-0000' },
        ...(clientOptions.maxAttempts === undefined ? {} : { maxAttempts: clientOptions.maxAttempts }),
      });
      clients.push(client);
      return client;
    },
    arn: (keyId) => `arn:aws:kms:${region}:${account}:key/${keyId}`,
    async dispose() {
      for (const client of clients) client.destroy();
      await t.dispose();
      rmSync(secretDir, { recursive: true, force: true });
    },
  };
}
