import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadSync } from '@grpc/proto-loader';
import { BrokerError } from '@hsm-broker/errors';
import { maxCiphertextBytes } from '@hsm-broker/keys';
import { DecryptRequest, EncryptRequest } from '@hsm-broker/proto';
import { longestField } from './receive-guard.js';
import { checkRequestLimits, defaultReceiveLimits, methodLimits } from './request-limits.js';

const protoRoot = fileURLToPath(new URL('../../../proto', import.meta.url));
const files = ['hsmbroker/v1/crypto_service.proto', 'hsmbroker/v1/key_service.proto', 'hsmbroker/v1/fleet_service.proto', 'hsmbroker/v1/backup_service.proto', 'hsmbroker/v1/audit_service.proto'];

interface FieldDescriptor {
  name: string;
  number: number;
}

/** Every RPC of the API with its request's fields, read from the proto files. */
function apiMethods(): Map<string, FieldDescriptor[]> {
  const definitions = loadSync(files, { includeDirs: [protoRoot], keepCase: true });
  const methods = new Map<string, FieldDescriptor[]>();
  for (const [name, definition] of Object.entries(definitions)) {
    if (!name.startsWith('hsmbroker.') || 'format' in definition) continue;
    for (const method of Object.values(definition as Record<string, { originalName?: string; path: string; requestType: { type: { field: FieldDescriptor[] } } }>)) {
      methods.set(method.path.slice(method.path.lastIndexOf('/') + 1), method.requestType.type.field);
    }
  }
  return methods;
}

describe('request limits', () => {
  const table = methodLimits(defaultReceiveLimits);

  it('covers every RPC of the API, with field names and numbers as in the proto', () => {
    const methods = apiMethods();
    assert.ok(methods.size >= 30, `read ${String(methods.size)} methods from the proto`);
    assert.deepEqual([...methods.keys()].sort(), Object.keys(table).sort());
    for (const [method, fields] of methods) {
      const limits = table[method];
      assert.ok(limits);
      for (const limit of [...limits.fields, ...limits.contexts]) {
        const declared = fields.find((field) => field.name === limit.field);
        assert.ok(declared, `${method}.${limit.field} exists`);
        assert.equal(declared.number, limit.number, `${method}.${limit.field} is field ${String(declared.number)}`);
      }
    }
  });

  it('bounds every key id, and every bytes field a caller sends', () => {
    const methods = apiMethods();
    for (const [method, fields] of methods) {
      const limits = table[method];
      assert.ok(limits);
      for (const field of fields) {
        if (!/^(key_id|destination_key_id|appliance_id|zone|ciphertext|plaintext|message|signature|mac|backup|page_token|description)$/.test(field.name)) continue;
        assert.ok(limits.fields.some((limit) => limit.field === field.name), `${method}.${field.name} is bounded`);
      }
    }
  });

  it('lets the largest valid request of each method through its message limit', () => {
    const largest = EncryptRequest.encode({ keyId: 'k'.repeat(128), plaintext: Buffer.alloc(65536), encryptionContext: { c: 'v'.repeat(8190) } }).finish();
    assert.ok(largest.length <= (table['Encrypt']?.maxMessageBytes ?? 0), `${String(largest.length)} bytes fit`);
    const decrypt = DecryptRequest.encode({ ciphertext: Buffer.alloc(maxCiphertextBytes), encryptionContext: { c: 'v'.repeat(8190) } }).finish();
    assert.ok(decrypt.length <= (table['Decrypt']?.maxMessageBytes ?? 0));
  });

  it('lets the page token of the longest key id through', () => {
    const token = Buffer.from('k'.repeat(128)).toString('base64url');
    const listKeys = table['ListKeys'];
    assert.ok(listKeys);
    checkRequestLimits(listKeys, { pageSize: 10, pageToken: token });
    assert.throws(() => checkRequestLimits(listKeys, { pageSize: 10, pageToken: `${token}x` }), /page_token: is 172 bytes/);
  });

  it('names the field over its limit, with sizes and never the content', () => {
    const limits = table['Decrypt'];
    assert.ok(limits);
    assert.throws(
      () => checkRequestLimits(limits, { ciphertext: Buffer.alloc(maxCiphertextBytes + 1), encryptionContext: {} }),
      (error: unknown) => error instanceof BrokerError && error.reason === 'CIPHERTEXT_TOO_LARGE' && error.message === `ciphertext: is ${String(maxCiphertextBytes + 1)} bytes; at most ${String(maxCiphertextBytes)} are allowed`,
    );
    const describeKey = table['DescribeKey'];
    assert.ok(describeKey);
    assert.throws(
      () => checkRequestLimits(describeKey, { keyId: 'secret-'.repeat(100) }),
      (error: unknown) => error instanceof BrokerError && error.reason === 'KEY_ID_TOO_LONG' && !error.message.includes('secret'),
    );
    assert.throws(() => checkRequestLimits(limits, { ciphertext: Buffer.alloc(1), encryptionContext: Object.fromEntries(Array.from({ length: 65 }, (_v, i) => [`k${String(i)}`, 'v'])) }), /encryption_context: has 65 entries/);
    checkRequestLimits(limits, { ciphertext: Buffer.alloc(maxCiphertextBytes), encryptionContext: {} });
  });
});

describe('longestField', () => {
  it('finds the longest length-delimited field without decoding', () => {
    const bytes = EncryptRequest.encode({ keyId: 'k', plaintext: Buffer.alloc(300), encryptionContext: { a: 'b' } }).finish();
    assert.deepEqual(longestField(bytes), { number: 2, length: 300 });
  });

  it('counts only the bytes present when the length lies', () => {
    assert.deepEqual(longestField(Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x41])), { number: 1, length: 1 });
  });

  it('stops at garbage', () => {
    assert.equal(longestField(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), undefined);
    assert.equal(longestField(Buffer.alloc(0)), undefined);
  });
});
