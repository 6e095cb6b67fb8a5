import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import type { FleetPort } from './fleet-port.js';
import { KeyRegistry } from './key-registry.js';
import { SqliteKeyStore } from './sqlite-key-store.js';

/**
 * An in-memory fleet of three "appliances" doing AES-GCM and HMAC with
 * node:crypto. Appliances in `corrupting` store a damaged copy when they
 * unwrap, as a faulty HSM or a broken transport would.
 */
function fakeFleet(corrupting: ReadonlySet<string>): { fleet: FleetPort; objects: Map<string, Map<string, Buffer>> } {
  const zones: Record<string, string> = { a: 'z1', b: 'z2', c: 'z3' };
  const objects = new Map(Object.keys(zones).map((id) => [id, new Map<string, Buffer>()]));
  const keyOf = (id: string, label: string): Buffer => {
    const key = objects.get(id)?.get(label);
    if (!key) throw new Error(`${label} missing on ${id}`);
    return key;
  };
  const executeOn = (id: string, op: string, args: Record<string, unknown>): Promise<unknown> => {
    const label = String(args['label']);
    const store = objects.get(id);
    assert.ok(store);
    switch (op) {
      case 'wrapKey':
        return Promise.resolve({ wrapped: Buffer.from(keyOf(id, label)) });
      case 'unwrapKey': {
        const copy = Buffer.from((args['key'] as { wrapped: Buffer }).wrapped);
        if (corrupting.has(id)) copy[0] = (copy[0] ?? 0) ^ 0xff;
        store.set(label, copy);
        return Promise.resolve(null);
      }
      case 'encrypt': {
        const cipher = createCipheriv('aes-256-gcm', keyOf(id, label), args['iv'] as Buffer);
        cipher.setAAD(args['aad'] as Buffer);
        return Promise.resolve(Buffer.concat([cipher.update(args['plaintext'] as Buffer), cipher.final(), cipher.getAuthTag()]));
      }
      case 'decrypt': {
        const sealed = args['ciphertext'] as Buffer;
        const decipher = createDecipheriv('aes-256-gcm', keyOf(id, label), args['iv'] as Buffer);
        decipher.setAAD(args['aad'] as Buffer);
        decipher.setAuthTag(sealed.subarray(sealed.length - 16));
        try {
          return Promise.resolve(Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]));
        } catch {
          return Promise.reject(BrokerError.invalidArgument('ciphertext', 'tag check failed', 'INVALID_CIPHERTEXT'));
        }
      }
      case 'generateMac':
        return Promise.resolve(createHmac('sha256', keyOf(id, label)).update(args['message'] as Buffer).digest());
      case 'destroyKey':
        return Promise.resolve(store.delete(label) ? 1 : 0);
      default:
        return Promise.reject(new Error(`the fake fleet does not do ${op}`));
    }
  };
  const appliances = Object.entries(zones).map(([id, zone]) => ({ id, zone, available: true }));
  const fleet = {
    appliances,
    appliance: (id: string) => appliances.find((appliance) => appliance.id === id),
    execute: (op: string, args: Record<string, unknown>) => {
      assert.equal(op, 'generateKey');
      objects.get('a')?.set(String(args['label']), randomBytes(32));
      return Promise.resolve({ result: {}, applianceId: 'a' });
    },
    executeOn,
  };
  return { fleet: fleet as unknown as FleetPort, objects };
}

describe('replica verification', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-replicas-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function registry(name: string, corrupting: string[]): { registry: KeyRegistry; store: SqliteKeyStore; objects: Map<string, Map<string, Buffer>> } {
    const { fleet, objects } = fakeFleet(new Set(corrupting));
    const store = new SqliteKeyStore(join(dir, `${name}.db`));
    return { registry: new KeyRegistry({ fleet, store, durability: { minAppliances: 2, minZones: 2 }, enrolled: () => new Set(['a', 'b', 'c']) }), store, objects };
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
    const { registry: keys, store, objects } = registry('quorum', ['b', 'c']);
    try {
      await assert.rejects(
        keys.createKey({ keyId: 'k', keySpec: 'AES_256', keyUsage: 'ENCRYPT_DECRYPT', description: '', labels: {}, rotationPeriodDays: 0 }),
        (error: unknown) => error instanceof BrokerError && error.reason === 'DURABILITY_QUORUM_NOT_MET' && /after replication/.test(error.message),
      );
      assert.deepEqual([...objects.values()].map((held) => [...held.keys()]), [[], [], []], 'no copy is left on any appliance');
      assert.equal(store.getKey('k'), undefined);
    } finally {
      store.close();
    }
  });
});
