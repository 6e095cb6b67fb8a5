import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './broker-config.js';
import { parseStoreConfig } from './store-config.js';

describe('store (HSMB_STORE)', () => {
  it('defaults to the embedded SQLite store', () => {
    assert.deepEqual(parseStoreConfig(undefined), { kind: 'sqlite' });
    assert.deepEqual(parseStoreConfig('sqlite'), { kind: 'sqlite' });
    assert.deepEqual(loadConfig({ HSMB_DATA_DIR: '/tmp/x' }).store, { kind: 'sqlite' });
  });

  it('takes a postgres:// URL from the environment', () => {
    const url = 'postgres://hsmb:s3cret@db.internal:5432/hsmb';
    assert.deepEqual(loadConfig({ HSMB_DATA_DIR: '/tmp/x', HSMB_STORE: url }).store, { kind: 'postgres', url });
    assert.deepEqual(parseStoreConfig('postgresql://h/db'), { kind: 'postgres', url: 'postgresql://h/db' });
  });

  it('names the field and masks the password of a value it refuses', () => {
    assert.throws(
      () => parseStoreConfig('mysql://user:s3cret@h/db'),
      (error: unknown) => error instanceof Error && error.message.startsWith('store (HSMB_STORE):') && !error.message.includes('s3cret') && error.message.includes('postgres://'),
    );
    assert.throws(() => parseStoreConfig(42), /store \(HSMB_STORE\): 42 is not valid/);
  });
});
