import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { keyStoreBehaviour } from './key-store-behaviour.js';
import { SqliteKeyStore } from './sqlite-key-store.js';

describe('SqliteKeyStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  keyStoreBehaviour(() => Promise.resolve(new SqliteKeyStore(join(dir, 'broker.db'))));
});
