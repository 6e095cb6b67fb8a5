import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { KeyRegistry } from './key-registry.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
import { InMemoryFleet } from './testing/in-memory-fleet.js';

async function setUp(): Promise<{ fleet: InMemoryFleet; store: SqliteKeyStore; registry: KeyRegistry }> {
  const fleet = new InMemoryFleet({ a: 'z1', b: 'z2', c: 'z3' });
  const store = new SqliteKeyStore(':memory:');
  const registry = new KeyRegistry({ fleet, store, durability: { minAppliances: 2, minZones: 2 }, enrolled: () => new Set(['a', 'b', 'c']) });
  await registry.createKey({ keyId: 'aes', keySpec: 'AES_256', keyUsage: 'ENCRYPT_DECRYPT', description: '', labels: {}, rotationPeriodDays: 0 });
  return { fleet, store, registry };
}

const refusal = (code: Code, reason: string, field?: string) => (error: unknown): boolean =>
  error instanceof BrokerError && error.code === code && error.reason === reason && (field === undefined || error.details['field'] === field);

describe('KeyCrypto', () => {
  it('sends a call only to appliances that hold the version, and refuses when none does', async () => {
    const { fleet, store, registry } = await setUp();
    store.setReplica('aes', 1, 'a', false, 0);
    store.setReplica('aes', 1, 'b', false, 0);
    const attempts: string[] = [];
    const sealed = await registry.encrypt('aes', Buffer.from('x'), {}, { onAttempt: (id) => attempts.push(id) });
    assert.deepEqual(attempts, ['c']);
    assert.deepEqual(fleet.callsOf('encrypt').slice(-1).map((call) => call.applianceId), ['c']);
    store.setReplica('aes', 1, 'c', false, 0);
    await assert.rejects(registry.encrypt('aes', Buffer.from('x'), {}), refusal(Code.UNAVAILABLE, 'NO_REPLICA'));
    await assert.rejects(registry.decrypt(sealed.ciphertext, {}), refusal(Code.UNAVAILABLE, 'NO_REPLICA'));
    store.close();
  });

  it('refuses a disabled key, a key of another usage and a different context, each with its reason', async () => {
    const { store, registry } = await setUp();
    const sealed = await registry.encrypt('aes', Buffer.from('x'), { tenant: 'a' });
    await assert.rejects(registry.decrypt(sealed.ciphertext, { tenant: 'b' }), refusal(Code.INVALID_ARGUMENT, 'INVALID_CIPHERTEXT', 'ciphertext'));
    await assert.rejects(registry.sign('aes', Buffer.alloc(32), 'DIGEST', 'ECDSA_SHA_256'), refusal(Code.FAILED_PRECONDITION, 'WRONG_KEY_USAGE'));
    await assert.rejects(registry.generateMac('aes', Buffer.from('m'), 'HMAC_SHA_256'), refusal(Code.FAILED_PRECONDITION, 'WRONG_KEY_USAGE'));
    await assert.rejects(registry.verify('nope', 0, Buffer.from('m'), 'RAW', Buffer.alloc(8), 'ECDSA_SHA_256'), refusal(Code.NOT_FOUND, 'KEY_NOT_FOUND', 'key_id'));
    await registry.disableKey('aes');
    await assert.rejects(registry.encrypt('aes', Buffer.from('x'), {}), refusal(Code.FAILED_PRECONDITION, 'KEY_DISABLED'));
    await assert.rejects(registry.decrypt(sealed.ciphertext, { tenant: 'a' }), refusal(Code.FAILED_PRECONDITION, 'KEY_DISABLED'));
    await assert.rejects(registry.generateDataKey('aes', 32, {}), refusal(Code.FAILED_PRECONDITION, 'KEY_DISABLED'));
    store.close();
  });

  it('names the field of a bad size', async () => {
    const { store, registry } = await setUp();
    await assert.rejects(registry.generateRandom(0), refusal(Code.INVALID_ARGUMENT, 'INVALID_NUM_BYTES', 'num_bytes'));
    await assert.rejects(registry.encrypt('aes', Buffer.alloc(65_537), {}), refusal(Code.INVALID_ARGUMENT, 'PLAINTEXT_TOO_LARGE', 'plaintext'));
    assert.equal((await registry.generateRandom(16)).length, 16);
    const dataKey = await registry.generateDataKey('aes', 32, { purpose: 'file' });
    assert.ok((await registry.decrypt(dataKey.ciphertextBlob, { purpose: 'file' })).plaintext.equals(dataKey.plaintext));
    store.close();
  });
});
