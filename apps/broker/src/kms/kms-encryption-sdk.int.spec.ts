import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CommitmentPolicy, KmsKeyringNode, buildClient, getClient } from '@aws-crypto/client-node';
import { CreateAliasCommand, CreateKeyCommand, KMS } from '@aws-sdk/client-kms';
import { startKmsTestBroker } from '../testing/kms-harness.js';
import type { KmsTestBroker } from '../testing/kms-harness.js';

const service = { accessKeyId: 'AKIAVPCAPAYMENTS', identity: 'spiffe://corp/vpc-a/payments' };

describe('the AWS Encryption SDK for JavaScript against the KMS endpoint', { timeout: 600_000 }, () => {
  let t: KmsTestBroker;
  let keyA: string;
  let keyB: string;
  let keyC: string;
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const plaintext = randomBytes(1024 * 1024);
  const encryptionContext = { tenant: 'acme', purpose: 'statements', region: 'eu' };
  let clientProvider: ReturnType<typeof getClient<KMS, ConstructorParameters<typeof KMS>[0]>>;

  before(async () => {
    t = await startKmsTestBroker([service]);
    const admin = t.kmsClient();
    const create = async (): Promise<string> => t.arn((await admin.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '');
    [keyA, keyB, keyC] = [await create(), await create(), await create()];
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/statements', TargetKeyId: keyA }));
    // What a service changes to move to the broker: the endpoint and the credentials.
    // The Encryption SDK calls the aggregated client (KMS), the same SDK as KMSClient with a method per operation.
    clientProvider = getClient(KMS, { endpoint: t.kmsUrl, credentials: { accessKeyId: service.accessKeyId, secretAccessKey: t.secrets.get(service.accessKeyId) ?? '' } });
  });
  after(async () => {
    await t.dispose();
  });

  it('encrypts 1 MiB with an encryption context and decrypts it, the context authenticated', async () => {
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: keyA });
    const { result, messageHeader } = await encrypt(keyring, plaintext, { encryptionContext });
    assert.ok(result.length > plaintext.length);
    assert.equal(messageHeader.encryptedDataKeys.length, 1);
    assert.equal(messageHeader.encryptedDataKeys[0]?.providerInfo, keyA, 'the key ARN the SDK sent came back unchanged');
    const opened = await decrypt(keyring, result);
    assert.ok(opened.plaintext.equals(plaintext));
    for (const [name, value] of Object.entries(encryptionContext)) assert.equal(opened.messageHeader.encryptionContext[name], value);
  });

  it('rejects a tampered message', async () => {
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: keyA });
    const { result } = await encrypt(keyring, plaintext, { encryptionContext });
    const body = Buffer.from(result);
    const middle = Math.floor(body.length / 2);
    body[middle] = (body[middle] ?? 0) ^ 0x01;
    await assert.rejects(decrypt(keyring, body));
    // A changed encrypted data key (the broker ciphertext inside the header) is refused too.
    const header = Buffer.from(result);
    const blobAt = header.indexOf(Buffer.from('HB\x01', 'latin1'));
    assert.ok(blobAt > 0, 'the encrypted data key is a broker ciphertext');
    header[blobAt + 60] = (header[blobAt + 60] ?? 0) ^ 0x01;
    await assert.rejects(decrypt(keyring, header));
  });

  it('a message encrypted under two keys decrypts with either alone, and not with a third', async () => {
    const both = new KmsKeyringNode({ clientProvider, generatorKeyId: `arn:aws:kms:${t.region}:${t.account}:alias/statements`, keyIds: [keyB] });
    const { result, messageHeader } = await encrypt(both, plaintext, { encryptionContext });
    assert.equal(messageHeader.encryptedDataKeys.length, 2);
    for (const key of [keyA, keyB]) {
      const { plaintext: opened } = await decrypt(new KmsKeyringNode({ clientProvider, keyIds: [key] }), result);
      assert.ok(opened.equals(plaintext), `decrypts with ${key} alone`);
    }
    await assert.rejects(decrypt(new KmsKeyringNode({ clientProvider, keyIds: [keyC] }), result));
  });
});
