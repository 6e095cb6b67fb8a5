import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyRecord } from './key-model.js';
import { KeyResolver } from './key-resolver.js';
import type { KeyStore } from './key-store.js';
import { newTestKey } from './key-store-behaviour.js';
import { SqliteKeyStore } from './sqlite-key-store.js';

function refusal(code: Code, reason: string, field?: string) {
  return (error: unknown): boolean =>
    error instanceof BrokerError && error.code === code && error.reason === reason && (field === undefined || (error.details['field'] === field && error.message.startsWith(`${field}:`)));
}

/** A store whose getKey calls are counted. */
function counted(store: KeyStore): { store: KeyStore; reads: () => number } {
  let reads = 0;
  const getKey = store.getKey.bind(store);
  store.getKey = (keyId: string): KeyRecord | undefined => {
    reads++;
    return getKey(keyId);
  };
  return { store, reads: () => reads };
}

describe('KeyResolver', () => {
  it('refuses an unknown key with NOT_FOUND naming key_id, on both paths', () => {
    const resolver = new KeyResolver(new SqliteKeyStore(':memory:'));
    assert.throws(() => resolver.require('nope'), refusal(Code.NOT_FOUND, 'KEY_NOT_FOUND', 'key_id'));
    assert.throws(() => resolver.cached('nope'), refusal(Code.NOT_FOUND, 'KEY_NOT_FOUND', 'key_id'));
    assert.throws(() => resolver.usable('nope', 'ENCRYPT_DECRYPT'), refusal(Code.NOT_FOUND, 'KEY_NOT_FOUND', 'key_id'));
    assert.equal(resolver.find('nope'), undefined);
  });

  it('refuses a disabled or pending key and one made for another usage', () => {
    const store = new SqliteKeyStore(':memory:');
    const resolver = new KeyResolver(store);
    store.createKey(newTestKey('k'));
    assert.equal(resolver.usable('k', 'ENCRYPT_DECRYPT').keyId, 'k');
    assert.throws(() => resolver.usable('k', 'SIGN_VERIFY'), refusal(Code.FAILED_PRECONDITION, 'WRONG_KEY_USAGE'));
    store.setState('k', 'DISABLED', undefined);
    assert.throws(() => resolver.usable('k', 'ENCRYPT_DECRYPT'), refusal(Code.FAILED_PRECONDITION, 'KEY_DISABLED'));
    store.setState('k', 'PENDING_DELETION', 9000);
    assert.throws(() => resolver.usable('k', 'ENCRYPT_DECRYPT'), refusal(Code.FAILED_PRECONDITION, 'KEY_PENDING_DELETION'));
  });

  it('finds the primary for version 0, refuses a missing version naming the field, and one no appliance holds', () => {
    const store = new SqliteKeyStore(':memory:');
    const resolver = new KeyResolver(store);
    store.createKey(newTestKey('k'));
    store.addVersion('k', 2, 2000, undefined, []);
    const key = resolver.require('k');
    assert.equal(resolver.version(key, 1).version, 1);
    assert.throws(() => resolver.version(key, 0), refusal(Code.UNAVAILABLE, 'NO_REPLICA'), 'the primary, version 2, is on no appliance');
    assert.equal(resolver.version(key, 0, 'key_version', false).version, 2, 'software operations need no replica');
    assert.throws(() => resolver.version(key, 7), refusal(Code.NOT_FOUND, 'KEY_VERSION_NOT_FOUND', 'key_version'));
    assert.throws(() => resolver.version(key, 7, 'ciphertext'), refusal(Code.NOT_FOUND, 'KEY_VERSION_NOT_FOUND', 'ciphertext'));
    store.updateSettings('k', { minDecryptionVersion: 2 });
    assert.throws(() => resolver.checkNotRetired(resolver.require('k'), 1), refusal(Code.FAILED_PRECONDITION, 'KEY_VERSION_RETIRED'));
    assert.doesNotThrow(() => resolver.checkNotRetired(resolver.require('k'), 2));
  });

  it('reads a key for Verify once, and again after the store announces a change to it', () => {
    const { store, reads } = counted(new SqliteKeyStore(':memory:'));
    const resolver = new KeyResolver(store);
    store.createKey(newTestKey('k'));
    store.createKey(newTestKey('other'));
    const before = reads();
    resolver.cached('k');
    resolver.cached('k');
    resolver.cached('other');
    assert.equal(reads() - before, 2);
    // Another broker disables k: a shared store announces it.
    store.setState('k', 'DISABLED', undefined);
    const afterChange = reads();
    assert.equal(resolver.cached('k').keyState, 'DISABLED');
    assert.equal(reads() - afterChange, 1, 'k was read again');
    resolver.cached('other');
    assert.equal(reads() - afterChange, 1, 'other stayed cached');
  });

  it('drops every cached key when the store may have missed changes (it reconnected)', () => {
    const listeners: ((keyId: string | undefined) => void)[] = [];
    const inner = new SqliteKeyStore(':memory:');
    const { store, reads } = counted(inner);
    store.onKeyChanged = (listener) => {
      listeners.push(listener);
      return () => undefined;
    };
    const resolver = new KeyResolver(store);
    store.createKey(newTestKey('k'));
    resolver.cached('k');
    const before = reads();
    resolver.cached('k');
    assert.equal(reads(), before);
    for (const listener of listeners) listener(undefined);
    resolver.cached('k');
    assert.equal(reads(), before + 1);
  });
});
