import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from './broker-config.js';
import { redactStoreUrl } from '@hsm-broker/keys';
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

  it('masks a password wherever a connection string can carry one', () => {
    assert.equal(redactStoreUrl('postgres://hsmb:s3cret@db:5432/hsmb'), 'postgres://hsmb:***@db:5432/hsmb');
    assert.equal(redactStoreUrl('postgres://hsmb@db/hsmb?password=s3cret&sslmode=require'), 'postgres://hsmb@db/hsmb?password=***&sslmode=require');
    assert.equal(redactStoreUrl('postgres://hsmb:p@ss@db/hsmb'), 'postgres://hsmb:***@db/hsmb');
    assert.equal(redactStoreUrl('postgres://db/hsmb'), 'postgres://db/hsmb');
    assert.equal(redactStoreUrl('not a url s3cret'), '***');
  });

  it('refuses the KMS endpoint beside a PostgreSQL store, whose replicas would each keep their own aliases', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-store-kms-'));
    try {
      const config = join(dir, 'broker.yaml');
      writeFileSync(config, 'kms:\n  region: eu-west-1\n  account: "111122223333"\n  credentials:\n    - accessKeyId: AKIAVPCAPAYMENTS\n      secretFile: /etc/hsmb/kms/vpc-a.secret\n      identity: spiffe://corp/vpc-a/payments\n');
      const env = { HSMB_DATA_DIR: dir, HSMB_CONFIG: config };
      assert.equal(loadConfig(env).kms?.region, 'eu-west-1');
      assert.throws(() => loadConfig({ ...env, HSMB_STORE: 'postgres://hsmb:s3cret@db/hsmb' }), (error: unknown) => error instanceof Error && error.message.startsWith('kms:') && /PostgreSQL/.test(error.message) && !error.message.includes('s3cret'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
