import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { KeyRegistry } from './key-registry.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
import { InMemoryFleet } from './testing/in-memory-fleet.js';

describe('replica verification', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-replicas-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function registry(name: string, corrupting: string[]): { registry: KeyRegistry; store: SqliteKeyStore; fleet: InMemoryFleet } {
    const fleet = new InMemoryFleet({ a: 'z1', b: 'z2', c: 'z3' });
    for (const id of corrupting) fleet.corrupting.add(id);
    const store = new SqliteKeyStore(join(dir, `${name}.db`));
    return { registry: new KeyRegistry({ fleet, store, durability: { minAppliances: 2, minZones: 2 }, enrolled: () => new Set(['a', 'b', 'c']) }), store, fleet };
  }

  for (const spec of ['AES_256', 'HMAC_256'] as const) {
    it(`${spec}: a copy that does not match the original does not count as a replica`, async () => {
      const { registry: keys, store } = registry(`one-${spec}`, ['c']);
      try {
        const usage = spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'GENERATE_VERIFY_MAC';
        const created = await keys.createKey({ keyId: 'k', keySpec: spec, keyUsage: usage, description: '', labels: {}, rotationPeriodDays: 0 });
        assert.deepEqual(created.versions[0]?.replicas.slice().sort(), ['a', 'b'], 'the damaged copy on c was not counted');
      } finally {
        store.close();
      }
    });
  }

  it('refuses the key with DURABILITY_QUORUM_NOT_MET and destroys every copy when too few copies match', async () => {
    const { registry: keys, store, fleet } = registry('quorum', ['b', 'c']);
    try {
      await assert.rejects(
        keys.createKey({ keyId: 'k', keySpec: 'AES_256', keyUsage: 'ENCRYPT_DECRYPT', description: '', labels: {}, rotationPeriodDays: 0 }),
        (error: unknown) => error instanceof BrokerError && error.reason === 'DURABILITY_QUORUM_NOT_MET' && /after replication/.test(error.message),
      );
      assert.deepEqual(['a', 'b', 'c'].map((id) => fleet.labelsOn(id)), [[], [], []], 'no copy is left on any appliance');
      assert.equal(store.getKey('k'), undefined);
    } finally {
      store.close();
    }
  });
});
