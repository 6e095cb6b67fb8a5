import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  AlreadyExistsException,
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  UpdateAliasCommand,
  DisabledException,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateMacCommand,
  GenerateRandomCommand,
  GetKeyRotationStatusCommand,
  GetPublicKeyCommand,
  InvalidCiphertextException,
  KMSInvalidMacException,
  KMSInvalidSignatureException,
  KMSInvalidStateException,
  KMSServiceException,
  ListAliasesCommand,
  ListKeysCommand,
  NotFoundException,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  UnsupportedOperationException,
  VerifyCommand,
  VerifyMacCommand,
  IncorrectKeyException,
  InvalidKeyUsageException,
} from '@aws-sdk/client-kms';
import type { KMSClient } from '@aws-sdk/client-kms';
import { parseCiphertext } from '@hsm-broker/keys';
import { KeySpec, KeyUsage } from '@hsm-broker/proto';
import type { AuditCallRecord } from '@hsm-broker/audit';
import { startKmsTestBroker } from '../testing/kms-harness.js';
import type { KmsTestBroker } from '../testing/kms-harness.js';

const payments = { accessKeyId: 'AKIAVPCAPAYMENTS', identity: 'spiffe://corp/vpc-a/payments' };
const reports = { accessKeyId: 'AKIAVPCBREPORTS0', identity: 'spiffe://corp/vpc-b/reports' };
const batch = { accessKeyId: 'AKIAVPCQBATCHJOB', identity: 'spiffe://corp/vpc-q/batch' };
const policy = `grants:
  - identity: "spiffe://corp/vpc-a/payments"
    roles: [crypto-user, key-admin]
    keys: ["*"]
  - identity: "spiffe://corp/vpc-b/reports"
    roles: [crypto-user]
    keys: ["vpc-b/*"]
  - identity: "spiffe://corp/vpc-q/batch"
    roles: [crypto-user]
    keys: ["*"]
  - identity: anonymous
    roles: [crypto-user, key-admin]
    keys: ["*"]
quotas:
  - identity: "spiffe://corp/vpc-q/batch"
    symmetric: { ratePerSecond: 0.001, burst: 2 }
`;

/** Sends raw bytes to the endpoint and returns the status and the KMS body. */
function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: 'POST', headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** The error an SDK call failed with. */
async function failure(promise: Promise<unknown>): Promise<KMSServiceException> {
  try {
    await promise;
  } catch (error: unknown) {
    assert.ok(error instanceof KMSServiceException, `expected a KMS service error, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the call to fail, but it succeeded');
}

describe('KMS-compatible endpoint with the real AWS SDK against a SoftHSM fleet', { timeout: 600_000 }, () => {
  let t: KmsTestBroker;
  let kms: KMSClient;
  let aes: string;
  let aes2: string;
  const records: AuditCallRecord[] = [];

  before(async () => {
    t = await startKmsTestBroker([payments, reports, batch], { policy });
    t.broker.audit.subscribe(({ entry }) => {
      if (entry.type === 'call') records.push(entry);
    });
    kms = t.kmsClient();
    aes = (await kms.send(new CreateKeyCommand({ Description: 'payments data', Tags: [{ TagKey: 'team', TagValue: 'payments' }] }))).KeyMetadata?.KeyId ?? '';
    aes2 = (await kms.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata?.KeyId ?? '';
  });
  after(async () => {
    await t.dispose();
  });

  it('CreateKey and DescribeKey: metadata in the KMS shape, by bare id and by ARN', async () => {
    const described = await kms.send(new DescribeKeyCommand({ KeyId: t.arn(aes) }));
    const metadata = described.KeyMetadata;
    assert.equal(metadata?.KeyId, aes);
    assert.equal(metadata?.Arn, t.arn(aes));
    assert.equal(metadata?.AWSAccountId, t.account);
    assert.equal(metadata?.KeySpec, 'SYMMETRIC_DEFAULT');
    assert.equal(metadata?.KeyState, 'Enabled');
    assert.equal(metadata?.Enabled, true);
    assert.equal(metadata?.Description, 'payments data');
    assert.ok(metadata?.CreationDate instanceof Date);
    assert.deepEqual(metadata?.EncryptionAlgorithms, ['SYMMETRIC_DEFAULT']);
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: aes }))).KeyMetadata?.Arn, t.arn(aes));
    // The same key through gRPC: it is one registry.
    const grpc = await t.clients.keys.describeKey({ keyId: aes });
    assert.deepEqual(grpc.keyMetadata?.labels, { team: 'payments' });
  });

  it('Encrypt and Decrypt with an encryption context; a wrong context is InvalidCiphertextException', async () => {
    const context = { tenant: 'acme', purpose: 'card' };
    const sealed = await kms.send(new EncryptCommand({ KeyId: t.arn(aes), Plaintext: Buffer.from('4111 1111 1111 1111'), EncryptionContext: context }));
    assert.equal(sealed.KeyId, t.arn(aes));
    assert.equal(sealed.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    const blob = sealed.CiphertextBlob ?? new Uint8Array();
    assert.equal(parseCiphertext(Buffer.from(blob)).keyId, aes, 'the blob is the broker ciphertext');
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }));
    assert.equal(Buffer.from(opened.Plaintext ?? []).toString(), '4111 1111 1111 1111');
    assert.equal(opened.KeyId, t.arn(aes));
    const wrong = await failure(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { tenant: 'other', purpose: 'card' } })));
    assert.ok(wrong instanceof InvalidCiphertextException);
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    assert.ok((await failure(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })))) instanceof InvalidCiphertextException);
    assert.ok((await failure(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: t.arn(aes2) })))) instanceof IncorrectKeyException);
  });

  it('ReEncrypt moves a ciphertext to another key without showing the plaintext', async () => {
    const sealed = await kms.send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('move me'), EncryptionContext: { a: '1' } }));
    const moved = await kms.send(new ReEncryptCommand({ CiphertextBlob: sealed.CiphertextBlob, SourceEncryptionContext: { a: '1' }, DestinationKeyId: t.arn(aes2), DestinationEncryptionContext: { b: '2' } }));
    assert.equal(moved.SourceKeyId, t.arn(aes));
    assert.equal(moved.KeyId, t.arn(aes2));
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob, EncryptionContext: { b: '2' } }));
    assert.equal(Buffer.from(opened.Plaintext ?? []).toString(), 'move me');
  });

  it('GenerateDataKey, GenerateDataKeyWithoutPlaintext and GenerateRandom', async () => {
    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: aes, KeySpec: 'AES_256', EncryptionContext: { file: 'x' } }));
    assert.equal(dataKey.Plaintext?.length, 32);
    assert.equal(dataKey.KeyId, t.arn(aes));
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: { file: 'x' } }));
    assert.deepEqual(Buffer.from(opened.Plaintext ?? []), Buffer.from(dataKey.Plaintext ?? []));
    const short = await kms.send(new GenerateDataKeyCommand({ KeyId: aes, NumberOfBytes: 16 }));
    assert.equal(short.Plaintext?.length, 16);
    const hidden = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: aes, KeySpec: 'AES_128' }));
    assert.equal(hidden.KeyId, t.arn(aes));
    assert.equal((await kms.send(new DecryptCommand({ CiphertextBlob: hidden.CiphertextBlob }))).Plaintext?.length, 16);
    const random = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    assert.equal(random.Plaintext?.length, 48);
    const again = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    assert.notDeepEqual(Buffer.from(random.Plaintext ?? []), Buffer.from(again.Plaintext ?? []));
    const tooMany = await failure(kms.send(new GenerateRandomCommand({ NumberOfBytes: 5000 })));
    assert.equal(tooMany.name, 'ValidationException');
    assert.match(tooMany.message, /NumberOfBytes/);
  });

  it('Sign, Verify and GetPublicKey with ECC_NIST_P256 and RSA_2048; signatures check with OpenSSL', async () => {
    for (const [spec, algorithm, hash] of [['ECC_NIST_P256', 'ECDSA_SHA_256', 'sha256'], ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', 'sha256']] as const) {
      const key = (await kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata?.KeyId ?? '';
      const message = Buffer.from(`invoice 42 under ${spec}`);
      const signed = await kms.send(new SignCommand({ KeyId: t.arn(key), Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
      assert.equal(signed.KeyId, t.arn(key));
      assert.equal(signed.SigningAlgorithm, algorithm);
      const publicKey = await kms.send(new GetPublicKeyCommand({ KeyId: key }));
      assert.equal(publicKey.KeySpec, spec);
      assert.ok(publicKey.SigningAlgorithms?.includes(algorithm));
      const spki = createPublicKey({ key: Buffer.from(publicKey.PublicKey ?? []), format: 'der', type: 'spki' });
      assert.ok(cryptoVerify(hash, message, spki, Buffer.from(signed.Signature ?? [])), 'OpenSSL accepts the signature');
      const verified = await kms.send(new VerifyCommand({ KeyId: key, Message: message, Signature: signed.Signature, SigningAlgorithm: algorithm }));
      assert.equal(verified.SignatureValid, true);
      const forged = await failure(kms.send(new VerifyCommand({ KeyId: key, Message: Buffer.from('invoice 43'), Signature: signed.Signature, SigningAlgorithm: algorithm })));
      assert.ok(forged instanceof KMSInvalidSignatureException);
    }
    const symmetric = await failure(kms.send(new SignCommand({ KeyId: aes, Message: Buffer.from('x'), SigningAlgorithm: 'ECDSA_SHA_256' })));
    assert.ok(symmetric instanceof InvalidKeyUsageException);
  });

  it('GenerateMac and VerifyMac with HMAC_256; a wrong MAC is KMSInvalidMacException', async () => {
    const key = (await kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata?.KeyId ?? '';
    const mac = await kms.send(new GenerateMacCommand({ KeyId: key, Message: Buffer.from('token'), MacAlgorithm: 'HMAC_SHA_256' }));
    assert.equal(mac.Mac?.length, 32);
    assert.equal(mac.KeyId, t.arn(key));
    assert.equal((await kms.send(new VerifyMacCommand({ KeyId: key, Message: Buffer.from('token'), Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_256' }))).MacValid, true);
    const wrong = await failure(kms.send(new VerifyMacCommand({ KeyId: key, Message: Buffer.from('tokem'), Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_256' })));
    assert.ok(wrong instanceof KMSInvalidMacException);
  });

  it('EnableKey, DisableKey, ScheduleKeyDeletion and CancelKeyDeletion, with DisabledException and KMSInvalidStateException', async () => {
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
    await kms.send(new DisableKeyCommand({ KeyId: key }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: key }))).KeyMetadata?.KeyState, 'Disabled');
    assert.ok((await failure(kms.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x') })))) instanceof DisabledException);
    await kms.send(new EnableKeyCommand({ KeyId: key }));
    await kms.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x') }));
    const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key, PendingWindowInDays: 7 }));
    assert.equal(scheduled.KeyState, 'PendingDeletion');
    assert.equal(scheduled.PendingWindowInDays, 7);
    assert.ok(scheduled.DeletionDate instanceof Date && scheduled.DeletionDate.getTime() > Date.now() + 6 * 86_400_000);
    assert.ok((await failure(kms.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x') })))) instanceof KMSInvalidStateException);
    assert.equal((await kms.send(new CancelKeyDeletionCommand({ KeyId: key }))).KeyId, t.arn(key));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: key }))).KeyMetadata?.KeyState, 'Disabled');
  });

  it('EnableKeyRotation, GetKeyRotationStatus and RotateKeyOnDemand: old ciphertexts still decrypt', async () => {
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: key }))).KeyRotationEnabled, false);
    await kms.send(new EnableKeyRotationCommand({ KeyId: key, RotationPeriodInDays: 180 }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key }));
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 180);
    assert.ok(status.NextRotationDate instanceof Date);
    const before = await kms.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from('v1') }));
    assert.equal((await kms.send(new RotateKeyOnDemandCommand({ KeyId: key }))).KeyId, t.arn(key));
    const afterRotation = await kms.send(new EncryptCommand({ KeyId: key, Plaintext: Buffer.from('v2') }));
    assert.equal(parseCiphertext(Buffer.from(before.CiphertextBlob ?? [])).keyVersion, 1);
    assert.equal(parseCiphertext(Buffer.from(afterRotation.CiphertextBlob ?? [])).keyVersion, 2);
    assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }))).Plaintext ?? []).toString(), 'v1');
    await kms.send(new DisableKeyRotationCommand({ KeyId: key }));
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: key }))).KeyRotationEnabled, false);
  });

  it('CreateAlias, ListAliases and DeleteAlias: an alias works wherever a key id does', async () => {
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/payments/cards', TargetKeyId: t.arn(aes) }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/payments/other', TargetKeyId: aes2 }));
    const viaAlias = await kms.send(new EncryptCommand({ KeyId: 'alias/payments/cards', Plaintext: Buffer.from('aliased') }));
    assert.equal(viaAlias.KeyId, t.arn(aes), 'the answer names the key, not the alias');
    const viaAliasArn = await kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:${t.region}:${t.account}:alias/payments/cards` }));
    assert.equal(viaAliasArn.KeyMetadata?.KeyId, aes);
    const duplicate = await failure(kms.send(new CreateAliasCommand({ AliasName: 'alias/payments/cards', TargetKeyId: aes2 })));
    assert.ok(duplicate instanceof AlreadyExistsException);
    const all = await kms.send(new ListAliasesCommand({}));
    assert.deepEqual(all.Aliases?.map((alias) => [alias.AliasName, alias.TargetKeyId]), [['alias/payments/cards', aes], ['alias/payments/other', aes2]]);
    assert.equal(all.Aliases?.[0]?.AliasArn, `arn:aws:kms:${t.region}:${t.account}:alias/payments/cards`);
    const paged = await kms.send(new ListAliasesCommand({ Limit: 1 }));
    assert.equal(paged.Truncated, true);
    assert.deepEqual((await kms.send(new ListAliasesCommand({ Limit: 1, Marker: paged.NextMarker }))).Aliases?.map((alias) => alias.AliasName), ['alias/payments/other']);
    assert.deepEqual((await kms.send(new ListAliasesCommand({ KeyId: aes2 }))).Aliases?.map((alias) => alias.AliasName), ['alias/payments/other']);
    await kms.send(new UpdateAliasCommand({ AliasName: 'alias/payments/other', TargetKeyId: aes }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/payments/other' }))).KeyMetadata?.KeyId, aes, 'UpdateAlias moved it');
    await kms.send(new DeleteAliasCommand({ AliasName: 'alias/payments/other' }));
    assert.ok((await failure(kms.send(new DescribeKeyCommand({ KeyId: 'alias/payments/other' })))) instanceof NotFoundException);
    assert.ok((await failure(kms.send(new DeleteAliasCommand({ AliasName: 'alias/payments/other' })))) instanceof NotFoundException);
    const reserved = await failure(kms.send(new CreateAliasCommand({ AliasName: 'alias/aws/s3', TargetKeyId: aes })));
    assert.equal(reserved.name, 'InvalidAliasNameException');
  });

  it('ListKeys pages through the keys with their ARNs', async () => {
    const first = await kms.send(new ListKeysCommand({ Limit: 2 }));
    assert.equal(first.Keys?.length, 2);
    assert.equal(first.Truncated, true);
    for (const key of first.Keys ?? []) assert.equal(key.KeyArn, t.arn(key.KeyId ?? ''));
    const seen = new Set((first.Keys ?? []).map((key) => key.KeyId));
    let marker = first.NextMarker;
    while (marker !== undefined) {
      const page = await kms.send(new ListKeysCommand({ Limit: 2, Marker: marker }));
      for (const key of page.Keys ?? []) seen.add(key.KeyId);
      marker = page.NextMarker;
    }
    assert.ok(seen.has(aes) && seen.has(aes2));
  });

  it('errors as the SDK types them: NotFound, Unsupported, Validation', async () => {
    assert.ok((await failure(kms.send(new EncryptCommand({ KeyId: 'no-such-key', Plaintext: Buffer.from('x') })))) instanceof NotFoundException);
    assert.ok((await failure(kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:us-east-1:${t.account}:key/${aes}` })))) instanceof NotFoundException, 'another region is another KMS');
    assert.ok((await failure(kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P521', KeyUsage: 'SIGN_VERIFY' })))) instanceof UnsupportedOperationException);
    assert.ok((await failure(kms.send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))) instanceof UnsupportedOperationException);
    const invalid = await failure(kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from('not a ciphertext at all') })));
    assert.ok(invalid instanceof InvalidCiphertextException);
  });

  it('the policy and the audit trail see the KMS identity: refused calls are AccessDeniedException and every call is recorded', async () => {
    const other = t.kmsClient(reports.accessKeyId);
    const denied = await failure(other.send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('x') })));
    assert.equal(denied.name, 'AccessDeniedException');
    assert.match(denied.message, /spiffe:\/\/corp\/vpc-b\/reports/);
    // The same refusal for a key that does not exist: the policy speaks before the registry.
    const deniedMissing = await failure(other.send(new EncryptCommand({ KeyId: 'no-such-key', Plaintext: Buffer.from('x') })));
    assert.equal(deniedMissing.name, 'AccessDeniedException');
    const noAdmin = await failure(other.send(new CreateKeyCommand({})));
    assert.equal(noAdmin.name, 'AccessDeniedException');
    const refused = records.find((record) => record.identity === reports.identity && record.operation === 'Encrypt' && record.keyId === aes);
    assert.equal(refused?.code, 7, 'recorded as PERMISSION_DENIED');
    const served = records.find((record) => record.identity === payments.identity && record.operation === 'Encrypt' && record.code === 0);
    assert.ok(served && served.appliances.length > 0, 'a served KMS Encrypt is recorded with the appliance that ran it');
    assert.ok(records.some((record) => record.identity === payments.identity && record.operation === 'CreateAlias' && record.code === 0));
  });

  it('a wrong secret, an unknown access key and another region are refused and never served', async () => {
    const before = records.length;
    const wrongSecret = await failure(t.kmsClient(payments.accessKeyId, { secret: 'not-the-secret-at-all', maxAttempts: 1 }).send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('x') })));
    assert.equal(wrongSecret.name, 'InvalidSignatureException');
    assert.equal(wrongSecret.$metadata.httpStatusCode, 400);
    const unknown = await failure(t.kmsClient('AKIANOBODY000000', { maxAttempts: 1 }).send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('x') })));
    assert.equal(unknown.name, 'UnrecognizedClientException');
    const region = await failure(t.kmsClient(payments.accessKeyId, { region: 'us-east-1', maxAttempts: 1 }).send(new DescribeKeyCommand({ KeyId: aes })));
    assert.equal(region.name, 'InvalidSignatureException');
    const refusals = records.slice(before);
    assert.equal(refusals.length, 3);
    assert.ok(refusals.every((record) => record.identity === '(unidentified)' && record.code === 16 && record.appliances.length === 0));
  });

  it('quotas apply to KMS identities: past its burst a caller gets ThrottlingException', async () => {
    const limited = t.kmsClient(batch.accessKeyId, { maxAttempts: 1 });
    await limited.send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('1') }));
    await limited.send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('2') }));
    const throttled = await failure(limited.send(new EncryptCommand({ KeyId: aes, Plaintext: Buffer.from('3') })));
    assert.equal(throttled.name, 'ThrottlingException');
    assert.ok(records.some((record) => record.identity === batch.identity && record.code === 8), 'recorded as RESOURCE_EXHAUSTED');
  });

  it('a signed request that was served is refused when replayed byte for byte', async () => {
    const captured: { headers: Record<string, string>; body: string }[] = [];
    const spy = t.kmsClient();
    const capture = (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }): Promise<unknown> => {
      const signed = args.request as { headers: Record<string, string>; body: string };
      captured.push({ headers: { ...signed.headers }, body: signed.body });
      return next(args);
    };
    spy.middlewareStack.addRelativeTo(capture as never, { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'captureSignedRequest' });
    await spy.send(new ScheduleKeyDeletionCommand({ KeyId: aes2, PendingWindowInDays: 30 }));
    await spy.send(new CancelKeyDeletionCommand({ KeyId: aes2 }));
    await spy.send(new EnableKeyCommand({ KeyId: aes2 }));
    const [scheduling] = captured;
    assert.ok(scheduling && scheduling.headers['authorization']?.startsWith('AWS4-HMAC-SHA256'));
    const replayed = await post(t.kmsUrl, scheduling.headers, scheduling.body);
    assert.equal(replayed.status, 400);
    assert.equal(replayed.body['__type'], 'InvalidSignatureException');
    assert.match(String(replayed.body['message']), /already served/);
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: aes2 }))).KeyMetadata?.KeyState, 'Enabled', 'the replay changed nothing');
  });

  it('the same key through gRPC and KMS: a ciphertext made by one decrypts through the other', async () => {
    await t.clients.keys.createKey({ keyId: 'shared/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    const context = { tenant: 'acme' };
    const fromGrpc = await t.clients.crypto.encrypt({ keyId: 'shared/aes', plaintext: Buffer.from('made by gRPC'), encryptionContext: context });
    const viaKms = await kms.send(new DecryptCommand({ CiphertextBlob: fromGrpc.ciphertext, EncryptionContext: context, KeyId: t.arn('shared/aes') }));
    assert.equal(Buffer.from(viaKms.Plaintext ?? []).toString(), 'made by gRPC');
    const fromKms = await kms.send(new EncryptCommand({ KeyId: 'shared/aes', Plaintext: Buffer.from('made by KMS'), EncryptionContext: context }));
    const viaGrpc = await t.clients.crypto.decrypt({ ciphertext: Buffer.from(fromKms.CiphertextBlob ?? []), encryptionContext: context });
    assert.equal(viaGrpc.plaintext.toString(), 'made by KMS');
    assert.equal(viaGrpc.keyId, 'shared/aes');
  });
});
