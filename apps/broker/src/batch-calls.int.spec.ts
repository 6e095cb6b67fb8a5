import assert from 'node:assert/strict';
import { constants, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import type { AuditEntry } from '@hsm-broker/audit';
import { reasonTrailer } from '@hsm-broker/errors';
import { CryptoServiceClient, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import type { BatchEncryptRequest, BatchEncryptResponse, EncryptRequest, ItemError } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

/** The loopback caller (anonymous) may use keys under b/ and administer every key; keys under secret/ are denied. */
const openPolicy = `grants:
  - identity: anonymous
    roles: [crypto-user]
    keys: ["b/*"]
  - identity: anonymous
    roles: [key-admin]
`;

type CallEntry = Extract<AuditEntry, { type: 'call' }>;

function assertItemError(error: ItemError | undefined, code: number, reason: string, pattern?: RegExp): void {
  assert.ok(error, `expected an item error ${reason}`);
  assert.equal(error.code, code, `${reason}: ${error.message}`);
  assert.equal(error.reason, reason);
  if (pattern) assert.match(error.message, pattern);
}

describe('batch RPCs against a local SoftHSM fleet', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let raw: InstanceType<typeof CryptoServiceClient>;
  let policyFile: string;
  const records: CallEntry[] = [];

  /** BatchEncrypt with a request id, through the generated client. */
  const batchEncrypt = (request: BatchEncryptRequest, requestId: string): Promise<BatchEncryptResponse> =>
    new Promise((resolve, reject) => {
      const metadata = new Metadata();
      metadata.set('x-request-id', requestId);
      raw.batchEncrypt(request, metadata, { deadline: Date.now() + 120_000 }, (error: ServiceError | null, response: BatchEncryptResponse) => (error ? reject(error) : resolve(response)));
    });

  before(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsmb-batch-'));
    policyFile = join(dataDir, 'policy.yaml');
    writeFileSync(policyFile, openPolicy);
    t = await startTestBroker({ dataDir, env: { HSMB_POLICY: policyFile } });
    raw = new CryptoServiceClient(t.broker.address, credentials.createInsecure());
    t.broker.audit.subscribe(({ entry }) => {
      if (entry.type === 'call') records.push(entry);
    });
    const create = (keyId: string, keySpec: KeySpec, keyUsage: KeyUsage) =>
      t.clients.keys.createKey({ keyId, keySpec, keyUsage, description: '', labels: {}, rotationPeriodDays: 0 });
    await create('b/aes', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
    await create('b/aes-2', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
    await create('b/aes-off', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
    await t.clients.keys.disableKey({ keyId: 'b/aes-off' });
    await create('secret/aes', KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT);
    await create('b/ec', KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY);
    await create('b/ec384', KeySpec.ECC_NIST_P384, KeyUsage.SIGN_VERIFY);
    await create('b/rsa', KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY);
    await create('b/mac', KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC);
  });

  after(async () => {
    raw.close();
    await t.dispose();
  });

  it('answers every item in order; unknown and missing key ids, disabled keys, denied keys and oversized items fail alone', async () => {
    const items: EncryptRequest[] = [
      { keyId: 'b/aes', plaintext: Buffer.from('zero'), encryptionContext: { n: '0' } },
      { keyId: 'b/missing', plaintext: Buffer.from('one'), encryptionContext: {} },
      { keyId: 'b/aes-2', plaintext: Buffer.from('two'), encryptionContext: {} },
      { keyId: 'b/aes-off', plaintext: Buffer.from('three'), encryptionContext: {} },
      { keyId: 'secret/aes', plaintext: Buffer.from('four'), encryptionContext: {} },
      { keyId: 'b/aes', plaintext: Buffer.alloc(65_537), encryptionContext: {} },
      { keyId: '', plaintext: Buffer.from('six'), encryptionContext: {} },
      { keyId: 'b/aes', plaintext: Buffer.from('seven'), encryptionContext: {} },
    ];
    const { results } = await batchEncrypt({ items }, 'batch-enc-1');
    assert.equal(results.length, items.length);
    for (const index of [0, 2, 7]) {
      assert.equal(results[index]?.error, undefined, `item ${String(index)}`);
      assert.equal(results[index]?.response?.keyId, items[index]?.keyId);
    }
    assertItemError(results[1]?.error, status.NOT_FOUND, 'KEY_NOT_FOUND', /key_id/);
    assertItemError(results[3]?.error, status.FAILED_PRECONDITION, 'KEY_DISABLED');
    assertItemError(results[4]?.error, status.PERMISSION_DENIED, 'ACCESS_DENIED');
    assertItemError(results[5]?.error, status.INVALID_ARGUMENT, 'PLAINTEXT_TOO_LARGE', /^plaintext:/);
    assert.equal(results[6]?.error?.code, status.INVALID_ARGUMENT);
    assert.match(results[6]?.error?.message ?? '', /key_id/);

    // The ciphertexts open again, each in its place; a tampered one fails alone.
    const sealed = [0, 2, 7].map((index) => results[index]?.response?.ciphertext ?? Buffer.alloc(0));
    const tampered = Buffer.from(sealed[1] ?? Buffer.alloc(0));
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const opened = await t.clients.crypto.batchDecrypt({
      items: [
        { ciphertext: sealed[0] ?? Buffer.alloc(0), encryptionContext: { n: '0' } },
        { ciphertext: tampered, encryptionContext: {} },
        { ciphertext: sealed[2] ?? Buffer.alloc(0), encryptionContext: {} },
        { ciphertext: sealed[0] ?? Buffer.alloc(0), encryptionContext: { n: 'other' } },
      ],
    });
    assert.deepEqual(opened.results[0]?.response?.plaintext, Buffer.from('zero'));
    assertItemError(opened.results[1]?.error, status.INVALID_ARGUMENT, 'INVALID_CIPHERTEXT');
    assert.deepEqual(opened.results[2]?.response?.plaintext, Buffer.from('seven'));
    assertItemError(opened.results[3]?.error, status.INVALID_ARGUMENT, 'INVALID_CIPHERTEXT');
  });

  it('audits each item as its unary call, pointing back to the batch, besides one record of the batch', async () => {
    const before = records.length;
    await batchEncrypt({ items: [{ keyId: 'b/aes', plaintext: Buffer.from('a'), encryptionContext: {} }, { keyId: 'secret/aes', plaintext: Buffer.from('b'), encryptionContext: {} }] }, 'batch-audit');
    const mine = (): CallEntry[] => records.slice(before).filter((entry) => entry.requestId.startsWith('batch-audit'));
    for (let attempt = 0; attempt < 100 && mine().length < 3; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    const written = mine();
    const item0 = written.find((entry) => entry.requestId === 'batch-audit:0');
    const item1 = written.find((entry) => entry.requestId === 'batch-audit:1');
    const call = written.find((entry) => entry.requestId === 'batch-audit');
    assert.equal(item0?.operation, 'Encrypt');
    assert.equal(item0?.code, status.OK);
    assert.equal(item0?.keyId, 'b/aes');
    assert.ok((item0?.appliances.length ?? 0) >= 1, 'the item names the appliance that served it');
    assert.equal(item1?.operation, 'Encrypt');
    assert.equal(item1?.code, status.PERMISSION_DENIED);
    assert.equal(item1?.reason, 'ACCESS_DENIED');
    assert.equal(call?.operation, 'BatchEncrypt');
    assert.equal(call?.code, status.OK);
  });

  it('signs many items over several keys and appliances, in order; BatchVerify checks them in software', async () => {
    const keys = [
      { keyId: 'b/ec', algorithm: SigningAlgorithm.ECDSA_SHA_256, hash: 'sha256' },
      { keyId: 'b/rsa', algorithm: SigningAlgorithm.RSASSA_PSS_SHA_256, hash: 'sha256' },
      { keyId: 'b/ec384', algorithm: SigningAlgorithm.ECDSA_SHA_384, hash: 'sha384' },
    ] as const;
    const items = Array.from({ length: 150 }, (_unused, index) => {
      const key = keys[index % keys.length] ?? keys[0];
      return { keyId: key.keyId, message: randomBytes(16 + (index % 7)), messageType: MessageType.RAW, signingAlgorithm: key.algorithm };
    });
    const before = records.length;
    const signed = await t.clients.crypto.batchSign({ items });
    assert.equal(signed.results.length, items.length);
    const publicKeys = new Map<string, Buffer>();
    for (const key of keys) publicKeys.set(key.keyId, (await t.clients.crypto.getPublicKey({ keyId: key.keyId, keyVersion: 0 })).publicKeyDer);
    items.forEach((item, index) => {
      const result = signed.results[index];
      assert.equal(result?.error, undefined, `item ${String(index)}: ${result?.error?.message ?? ''}`);
      assert.equal(result?.response?.keyId, item.keyId, `item ${String(index)} answered in its place`);
      const key = createPublicKey({ key: publicKeys.get(item.keyId) ?? Buffer.alloc(0), format: 'der', type: 'spki' });
      const hash = keys.find((candidate) => candidate.keyId === item.keyId)?.hash ?? 'sha256';
      const options = item.keyId === 'b/rsa' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : key;
      assert.ok(cryptoVerify(hash, item.message, options, result?.response?.signature ?? Buffer.alloc(0)), `item ${String(index)} verifies with node:crypto`);
    });
    const served = new Set(records.slice(before).filter((entry) => entry.operation === 'Sign').flatMap((entry) => entry.appliances));
    assert.ok(served.size >= 2, `items were spread over appliances (${[...served].join(', ')})`);

    const signatures = signed.results.map((result) => result.response?.signature ?? Buffer.alloc(0));
    const wrong = Buffer.from(signatures[1] ?? Buffer.alloc(0));
    wrong[10] = (wrong[10] ?? 0) ^ 0x40;
    const verifyBefore = records.length;
    const verified = await t.clients.crypto.batchVerify({
      items: [
        ...items.map((item, index) => ({ ...item, keyVersion: 0, signature: signatures[index] ?? Buffer.alloc(0) })),
        { ...items[1], keyId: 'b/rsa', keyVersion: 0, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PSS_SHA_256, message: items[1]?.message ?? Buffer.alloc(0), signature: wrong },
        { keyId: 'b/nope', keyVersion: 0, message: Buffer.from('m'), messageType: MessageType.RAW, signature: Buffer.alloc(8), signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 },
      ],
    });
    assert.equal(verified.results.length, items.length + 2);
    for (let index = 0; index < items.length; index++) assert.equal(verified.results[index]?.response?.signatureValid, true, `item ${String(index)}`);
    assert.equal(verified.results[items.length]?.response?.signatureValid, false, 'a tampered signature is invalid, not an error');
    assertItemError(verified.results[items.length + 1]?.error, status.NOT_FOUND, 'KEY_NOT_FOUND');
    const verifyRecords = records.slice(verifyBefore).filter((entry) => entry.operation === 'Verify');
    assert.ok(verifyRecords.length > 0);
    assert.deepEqual(new Set(verifyRecords.flatMap((entry) => entry.appliances)), new Set(), 'Verify asked no appliance');
  });

  it('BatchGenerateMac gives the MACs the unary call gives, 1000 items at once', async () => {
    const items = Array.from({ length: 1000 }, (_unused, index) => ({ keyId: 'b/mac', message: Buffer.from(`message ${String(index)}`), macAlgorithm: MacAlgorithm.HMAC_SHA_256 }));
    const { results } = await t.clients.crypto.batchGenerateMac({ items });
    assert.equal(results.length, 1000);
    for (const index of [0, 499, 999]) {
      const unary = await t.clients.crypto.generateMac(items[index] ?? items[0]);
      assert.deepEqual(results[index]?.response?.mac, unary.mac, `item ${String(index)}`);
    }
    assert.equal(results.filter((result) => result.error).length, 0);
  });

  it('refuses 1001 items and an empty batch with INVALID_ARGUMENT naming the field', async () => {
    const item = { keyId: 'b/mac', message: Buffer.from('m'), macAlgorithm: MacAlgorithm.HMAC_SHA_256 };
    const tooMany = await statusOf(t.clients.crypto.batchGenerateMac({ items: Array.from({ length: 1001 }, () => item) }));
    assert.equal(tooMany.code, status.INVALID_ARGUMENT);
    assert.match(tooMany.message, /^items: has 1001 items; at most 1000/);
    assert.equal(tooMany.metadata[reasonTrailer], 'TOO_MANY_ITEMS');
    const none = await statusOf(t.clients.crypto.batchSign({ items: [] }));
    assert.equal(none.code, status.INVALID_ARGUMENT);
    assert.match(none.message, /^items:/);
  });

  it('charges one quota token per item: a batch cannot carry more items than the quota allows', async () => {
    writeFileSync(policyFile, `${openPolicy}quotas:\n  - identity: anonymous\n    symmetric: { ratePerSecond: 0.001, burst: 5 }\n`);
    assert.equal(t.broker.access?.reload(), true);
    try {
      const items = Array.from({ length: 8 }, (_unused, index) => ({ keyId: 'b/aes', plaintext: Buffer.from(String(index)), encryptionContext: {} }));
      const { results } = await batchEncrypt({ items }, 'batch-quota');
      assert.equal(results.filter((result) => result.response).length, 5);
      const refused = results.filter((result) => result.error);
      assert.equal(refused.length, 3);
      for (const result of refused) assertItemError(result.error, status.RESOURCE_EXHAUSTED, 'QUOTA_EXHAUSTED');
      // The quota is spent for unary calls too.
      const unary = await statusOf(t.clients.crypto.encrypt({ keyId: 'b/aes', plaintext: Buffer.from('x'), encryptionContext: {} }));
      assert.equal(unary.code, status.RESOURCE_EXHAUSTED);
    } finally {
      writeFileSync(policyFile, openPolicy);
      t.broker.access?.reload();
    }
  });
});
