import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import type { Pool, PoolClient } from 'pg';
import type { KeyRecord, KeyState, KeyUsage, KeyVersionRecord } from './key-model.js';
import type { KeySettings, NewKey } from './key-store.js';
import { keyChangedChannel } from './pg-schema.js';
import { isRetryableConflict } from './pg-store-failure.js';

interface KeyRow {
  key_id: string;
  key_spec: string;
  key_usage: string;
  key_state: string;
  description: string;
  labels: Record<string, string>;
  created_at: string;
  deletion_time: string | null;
  primary_version: number;
  min_decryption_version: number;
  rotation_period_days: number;
  next_rotation_time: string | null;
}

interface VersionRow {
  key_id: string;
  version: number;
  created_at: string;
  public_key: Buffer | null;
}

interface ReplicaRow {
  key_id: string;
  version: number;
  appliance_id: string;
  verified_at: string;
}

type Queryable = Pool | PoolClient;

function notFound(keyId: string): BrokerError {
  return new BrokerError(Code.NOT_FOUND, `key_id: key ${keyId} does not exist`, { reason: 'KEY_NOT_FOUND' });
}

function exists(keyId: string): BrokerError {
  return new BrokerError(Code.ALREADY_EXISTS, `key_id: key ${keyId} already exists`, { reason: 'KEY_EXISTS' });
}

/** BIGINT comes back as a string (it may exceed 2^53; our ms timestamps do not). */
function time(value: string | null): number | undefined {
  return value === null ? undefined : Number(value);
}

/**
 * The PostgreSQL key store's statements, all asynchronous. Each change is
 * one transaction that locks the key's row first (`FOR UPDATE`), so
 * replicas changing one key queue behind each other, and that announces
 * the key id on {@link keyChangedChannel} when it commits.
 */
export class PgKeyQueries {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  async #load(db: Queryable, rows: KeyRow[]): Promise<KeyRecord[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((row) => row.key_id);
    const versions = await db.query<VersionRow>('SELECT key_id, version, created_at, public_key FROM key_versions WHERE key_id = ANY($1) ORDER BY key_id, version', [ids]);
    const replicas = await db.query<ReplicaRow>('SELECT key_id, version, appliance_id, verified_at FROM key_replicas WHERE key_id = ANY($1) ORDER BY appliance_id', [ids]);
    return rows.map((row): KeyRecord => ({
      keyId: row.key_id,
      keySpec: row.key_spec as KeyMaterialSpec,
      keyUsage: row.key_usage as KeyUsage,
      keyState: row.key_state as KeyState,
      description: row.description,
      labels: row.labels,
      createdAt: Number(row.created_at),
      deletionTime: time(row.deletion_time),
      primaryVersion: row.primary_version,
      minDecryptionVersion: row.min_decryption_version,
      rotationPeriodDays: row.rotation_period_days,
      nextRotationTime: time(row.next_rotation_time),
      versions: versions.rows
        .filter((version) => version.key_id === row.key_id)
        .map((version): KeyVersionRecord => {
          const held = replicas.rows.filter((replica) => replica.key_id === row.key_id && replica.version === version.version);
          return {
            version: version.version,
            createdAt: Number(version.created_at),
            publicKey: version.public_key ?? undefined,
            replicas: held.map((replica) => replica.appliance_id),
            replicaVerifiedAt: Object.fromEntries(held.map((replica) => [replica.appliance_id, Number(replica.verified_at)])),
          };
        }),
    }));
  }

  async #select(db: Queryable, where: string, params: unknown[]): Promise<KeyRecord[]> {
    const { rows } = await db.query<KeyRow>(`SELECT * FROM keys ${where}`, params);
    return this.#load(db, rows);
  }

  /** Runs `body` in one transaction, again from the start after a serialisation failure or deadlock. */
  async #transaction<T>(body: (client: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await body(client);
        await client.query('COMMIT');
        return result;
      } catch (error: unknown) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        if (attempt < 5 && isRetryableConflict(error)) continue;
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  async #locked(client: PoolClient, keyId: string): Promise<KeyRecord> {
    const [key] = await this.#select(client, 'WHERE key_id = $1 FOR UPDATE', [keyId]);
    if (!key) throw notFound(keyId);
    return key;
  }

  async #changed(client: PoolClient, keyId: string): Promise<KeyRecord> {
    await client.query('SELECT pg_notify($1, $2)', [keyChangedChannel, keyId]);
    const [key] = await this.#select(client, 'WHERE key_id = $1', [keyId]);
    if (!key) throw notFound(keyId);
    return key;
  }

  async #insertVersion(client: PoolClient, keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[], verifiedAt: Record<string, number> = {}): Promise<void> {
    await client.query('INSERT INTO key_versions (key_id, version, created_at, public_key) VALUES ($1, $2, $3, $4)', [keyId, version, createdAt, publicKey ?? null]);
    for (const appliance of replicas) {
      await client.query('INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES ($1, $2, $3, $4)', [keyId, version, appliance, verifiedAt[appliance] ?? createdAt]);
    }
  }

  async createKey(key: NewKey): Promise<KeyRecord> {
    return this.#transaction(async (client) => {
      const inserted = await client.query(
        `INSERT INTO keys (key_id, key_spec, key_usage, key_state, description, labels, created_at, deletion_time, primary_version,
                           min_decryption_version, rotation_period_days, next_rotation_time)
         VALUES ($1, $2, $3, 'ENABLED', $4, $5, $6, NULL, 1, 1, $7, $8) ON CONFLICT (key_id) DO NOTHING`,
        [key.keyId, key.keySpec, key.keyUsage, key.description, JSON.stringify(key.labels), key.createdAt, key.rotationPeriodDays, key.nextRotationTime ?? null],
      );
      if (inserted.rowCount === 0) throw exists(key.keyId);
      await this.#insertVersion(client, key.keyId, 1, key.createdAt, key.publicKey, key.replicas);
      return this.#changed(client, key.keyId);
    });
  }

  async importKey(key: KeyRecord): Promise<KeyRecord> {
    return this.#transaction(async (client) => {
      const inserted = await client.query(
        `INSERT INTO keys (key_id, key_spec, key_usage, key_state, description, labels, created_at, deletion_time, primary_version,
                           min_decryption_version, rotation_period_days, next_rotation_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (key_id) DO NOTHING`,
        [key.keyId, key.keySpec, key.keyUsage, key.keyState, key.description, JSON.stringify(key.labels), key.createdAt, key.deletionTime ?? null,
          key.primaryVersion, key.minDecryptionVersion, key.rotationPeriodDays, key.nextRotationTime ?? null],
      );
      if (inserted.rowCount === 0) throw exists(key.keyId);
      for (const version of key.versions) {
        await this.#insertVersion(client, key.keyId, version.version, version.createdAt, version.publicKey, version.replicas, version.replicaVerifiedAt);
      }
      return this.#changed(client, key.keyId);
    });
  }

  async addVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): Promise<KeyRecord> {
    return this.#transaction(async (client) => {
      const current = await this.#locked(client, keyId);
      if (current.primaryVersion + 1 !== version) {
        throw new BrokerError(Code.ABORTED, `key ${keyId} was rotated concurrently; try again`, { reason: 'CONCURRENT_ROTATION' });
      }
      await this.#insertVersion(client, keyId, version, createdAt, publicKey, replicas);
      await client.query('UPDATE keys SET primary_version = $1 WHERE key_id = $2', [version, keyId]);
      return this.#changed(client, keyId);
    });
  }

  async setState(keyId: string, state: KeyState, deletionTime: number | undefined): Promise<KeyRecord> {
    return this.#transaction(async (client) => {
      await this.#locked(client, keyId);
      await client.query('UPDATE keys SET key_state = $1, deletion_time = $2 WHERE key_id = $3', [state, deletionTime ?? null, keyId]);
      return this.#changed(client, keyId);
    });
  }

  async updateSettings(keyId: string, settings: KeySettings): Promise<KeyRecord> {
    return this.#transaction(async (client) => {
      await this.#locked(client, keyId);
      if (settings.minDecryptionVersion !== undefined) {
        await client.query('UPDATE keys SET min_decryption_version = $1 WHERE key_id = $2', [settings.minDecryptionVersion, keyId]);
      }
      if (settings.rotationPeriodDays !== undefined) {
        await client.query('UPDATE keys SET rotation_period_days = $1 WHERE key_id = $2', [settings.rotationPeriodDays, keyId]);
      }
      if ('nextRotationTime' in settings) {
        await client.query('UPDATE keys SET next_rotation_time = $1 WHERE key_id = $2', [settings.nextRotationTime ?? null, keyId]);
      }
      return this.#changed(client, keyId);
    });
  }

  async setReplica(keyId: string, version: number, applianceId: string, present: boolean, verifiedAt: number): Promise<void> {
    await this.#transaction(async (client) => {
      const { rows } = await client.query('SELECT 1 FROM keys WHERE key_id = $1 FOR UPDATE', [keyId]);
      // A key destroyed meanwhile has no replicas left to record.
      if (rows.length === 0) return;
      if (present) {
        await client.query(
          `INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (key_id, version, appliance_id) DO UPDATE SET verified_at = excluded.verified_at`,
          [keyId, version, applianceId, verifiedAt],
        );
      } else {
        await client.query('DELETE FROM key_replicas WHERE key_id = $1 AND version = $2 AND appliance_id = $3', [keyId, version, applianceId]);
      }
      await client.query('SELECT pg_notify($1, $2)', [keyChangedChannel, keyId]);
    });
  }

  async deleteKey(keyId: string): Promise<void> {
    await this.#transaction(async (client) => {
      await client.query('DELETE FROM keys WHERE key_id = $1', [keyId]);
      await client.query('SELECT pg_notify($1, $2)', [keyChangedChannel, keyId]);
    });
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    const [key] = await this.#select(this.#pool, 'WHERE key_id = $1', [keyId]);
    return key;
  }

  async listKeys(afterKeyId: string | undefined, limit: number): Promise<KeyRecord[]> {
    return this.#select(this.#pool, 'WHERE key_id > $1 ORDER BY key_id LIMIT $2', [afterKeyId ?? '', limit]);
  }

  async allKeys(): Promise<KeyRecord[]> {
    return this.#select(this.#pool, 'ORDER BY key_id', []);
  }

  async keysDueForRotation(now: number): Promise<KeyRecord[]> {
    return this.#select(this.#pool, "WHERE key_state = 'ENABLED' AND next_rotation_time IS NOT NULL AND next_rotation_time <= $1 ORDER BY key_id", [now]);
  }

  async keysDueForDeletion(now: number): Promise<KeyRecord[]> {
    return this.#select(this.#pool, "WHERE key_state = 'PENDING_DELETION' AND deletion_time <= $1 ORDER BY key_id", [now]);
  }

  async replicaCounts(): Promise<[string, number][]> {
    const { rows } = await this.#pool.query<{ appliance_id: string; n: string }>('SELECT appliance_id, COUNT(*) AS n FROM key_replicas GROUP BY appliance_id');
    return rows.map((row) => [row.appliance_id, Number(row.n)]);
  }

  async getMeta(name: string): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ value: string }>('SELECT value FROM fleet_meta WHERE name = $1', [name]);
    return rows[0]?.value;
  }

  async setMeta(name: string, value: string): Promise<void> {
    await this.#pool.query('INSERT INTO fleet_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [name, value]);
  }
}
