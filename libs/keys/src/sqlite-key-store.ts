import Database from 'better-sqlite3';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import type { KeyRecord, KeyState, KeyUsage, KeyVersionRecord } from './key-model.js';
import type { KeySettings, KeyStore, KeyStoreReads, NewKey } from './key-store.js';

const migrations: string[] = [
  `CREATE TABLE keys (
     key_id TEXT PRIMARY KEY,
     key_spec TEXT NOT NULL,
     key_usage TEXT NOT NULL,
     key_state TEXT NOT NULL,
     description TEXT NOT NULL,
     labels TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     deletion_time INTEGER,
     primary_version INTEGER NOT NULL
   );
   CREATE TABLE key_versions (
     key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     version INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     public_key BLOB,
     PRIMARY KEY (key_id, version)
   );
   CREATE TABLE key_replicas (
     key_id TEXT NOT NULL,
     version INTEGER NOT NULL,
     appliance_id TEXT NOT NULL,
     verified_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, version, appliance_id),
     FOREIGN KEY (key_id, version) REFERENCES key_versions(key_id, version) ON DELETE CASCADE
   );
   CREATE TABLE fleet_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  `ALTER TABLE keys ADD COLUMN min_decryption_version INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE keys ADD COLUMN rotation_period_days INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE keys ADD COLUMN next_rotation_time INTEGER;`,
];

interface KeyRow {
  key_id: string;
  key_spec: string;
  key_usage: string;
  key_state: string;
  description: string;
  labels: string;
  created_at: number;
  deletion_time: number | null;
  primary_version: number;
  min_decryption_version: number;
  rotation_period_days: number;
  next_rotation_time: number | null;
}

interface VersionRow {
  version: number;
  created_at: number;
  public_key: Buffer | null;
}

/**
 * The embedded metadata store: one SQLite file under the data directory,
 * written in WAL mode so a crash never leaves it half-written.
 */
export class SqliteKeyStore implements KeyStore {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  /**
   * Keys as last read, dropped on every write to them. Every request reads
   * its key; re-reading three tables each time cost more than the HSM call.
   * Records handed out are shared and must not be mutated.
   */
  readonly #keys = new Map<string, KeyRecord>();
  readonly #listeners = new Set<(keyId: string | undefined) => void>();

  #prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }

  /** A local file answers in microseconds, so the asynchronous reads are the synchronous ones, run on the next tick. */
  readonly reads: KeyStoreReads = {
    allKeys: () => Promise.resolve().then(() => this.allKeys()),
    replicaCounts: () => Promise.resolve().then(() => this.replicaCounts()),
    getMeta: (name) => Promise.resolve().then(() => this.getMeta(name)),
  };

  onKeyChanged(listener: (keyId: string | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells listeners a key changed and returns its fresh record. */
  #changed(keyId: string): KeyRecord {
    const key = this.#require(keyId);
    for (const listener of this.#listeners) listener(keyId);
    return key;
  }

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('foreign_keys = ON');
    const version = this.#db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < migrations.length; i++) {
      this.#db.transaction(() => {
        this.#db.exec(migrations[i] ?? '');
        this.#db.pragma(`user_version = ${String(i + 1)}`);
      })();
    }
  }

  #load(row: KeyRow): KeyRecord {
    const versions = this.#prepare<[string], VersionRow>('SELECT version, created_at, public_key FROM key_versions WHERE key_id = ? ORDER BY version')
      .all(row.key_id);
    const replicas = this.#prepare<[string], { version: number; appliance_id: string; verified_at: number }>(
        'SELECT version, appliance_id, verified_at FROM key_replicas WHERE key_id = ? ORDER BY appliance_id',
      )
      .all(row.key_id);
    return {
      keyId: row.key_id,
      keySpec: row.key_spec as KeyMaterialSpec,
      keyUsage: row.key_usage as KeyUsage,
      keyState: row.key_state as KeyState,
      description: row.description,
      labels: JSON.parse(row.labels) as Record<string, string>,
      createdAt: row.created_at,
      deletionTime: row.deletion_time ?? undefined,
      primaryVersion: row.primary_version,
      minDecryptionVersion: row.min_decryption_version,
      rotationPeriodDays: row.rotation_period_days,
      nextRotationTime: row.next_rotation_time ?? undefined,
      versions: versions.map((version): KeyVersionRecord => {
        const held = replicas.filter((replica) => replica.version === version.version);
        return {
          version: version.version,
          createdAt: version.created_at,
          publicKey: version.public_key ?? undefined,
          replicas: held.map((replica) => replica.appliance_id),
          replicaVerifiedAt: Object.fromEntries(held.map((replica) => [replica.appliance_id, replica.verified_at])),
        };
      }),
    };
  }

  /** Reads a key afresh (bypassing and refreshing the cache); NOT_FOUND when absent. */
  #require(keyId: string): KeyRecord {
    this.#keys.delete(keyId);
    const key = this.getKey(keyId);
    if (!key) throw new BrokerError(Code.NOT_FOUND, `key_id: key ${keyId} does not exist`, { reason: 'KEY_NOT_FOUND' });
    return key;
  }


  createKey(key: NewKey): KeyRecord {
    this.#keys.delete(key.keyId);
    this.#db.transaction(() => {
      const exists = this.#prepare('SELECT 1 FROM keys WHERE key_id = ?').get(key.keyId);
      if (exists) {
        throw new BrokerError(Code.ALREADY_EXISTS, `key_id: key ${key.keyId} already exists`, { reason: 'KEY_EXISTS' });
      }
      this.#prepare(
          `INSERT INTO keys (key_id, key_spec, key_usage, key_state, description, labels, created_at, deletion_time, primary_version,
                             min_decryption_version, rotation_period_days, next_rotation_time)
           VALUES (?, ?, ?, 'ENABLED', ?, ?, ?, NULL, 1, 1, ?, ?)`,
        )
        .run(key.keyId, key.keySpec, key.keyUsage, key.description, JSON.stringify(key.labels), key.createdAt, key.rotationPeriodDays, key.nextRotationTime ?? null);
      this.#insertVersion(key.keyId, 1, key.createdAt, key.publicKey, key.replicas);
    })();
    return this.#changed(key.keyId);
  }

  #insertVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): void {
    this.#prepare('INSERT INTO key_versions (key_id, version, created_at, public_key) VALUES (?, ?, ?, ?)')
      .run(keyId, version, createdAt, publicKey ?? null);
    const insert = this.#prepare('INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES (?, ?, ?, ?)');
    for (const appliance of replicas) insert.run(keyId, version, appliance, createdAt);
  }

  updateSettings(keyId: string, settings: KeySettings): KeyRecord {
    this.#keys.delete(keyId);
    this.#require(keyId);
    if (settings.minDecryptionVersion !== undefined) {
      this.#prepare('UPDATE keys SET min_decryption_version = ? WHERE key_id = ?').run(settings.minDecryptionVersion, keyId);
    }
    if (settings.rotationPeriodDays !== undefined) {
      this.#prepare('UPDATE keys SET rotation_period_days = ? WHERE key_id = ?').run(settings.rotationPeriodDays, keyId);
    }
    if ('nextRotationTime' in settings) {
      this.#prepare('UPDATE keys SET next_rotation_time = ? WHERE key_id = ?').run(settings.nextRotationTime ?? null, keyId);
    }
    return this.#changed(keyId);
  }

  keysDueForRotation(now: number): KeyRecord[] {
    return this.#prepare<[number], KeyRow>("SELECT * FROM keys WHERE key_state = 'ENABLED' AND next_rotation_time IS NOT NULL AND next_rotation_time <= ? ORDER BY key_id")
      .all(now)
      .map((row) => this.#load(row));
  }

  importKey(key: KeyRecord): KeyRecord {
    this.#keys.delete(key.keyId);
    this.#db.transaction(() => {
      if (this.#prepare('SELECT 1 FROM keys WHERE key_id = ?').get(key.keyId)) {
        throw new BrokerError(Code.ALREADY_EXISTS, `key_id: key ${key.keyId} already exists`, { reason: 'KEY_EXISTS' });
      }
      this.#prepare(
          `INSERT INTO keys (key_id, key_spec, key_usage, key_state, description, labels, created_at, deletion_time, primary_version,
                             min_decryption_version, rotation_period_days, next_rotation_time)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          key.keyId,
          key.keySpec,
          key.keyUsage,
          key.keyState,
          key.description,
          JSON.stringify(key.labels),
          key.createdAt,
          key.deletionTime ?? null,
          key.primaryVersion,
          key.minDecryptionVersion,
          key.rotationPeriodDays,
          key.nextRotationTime ?? null,
        );
      for (const version of key.versions) {
        this.#prepare('INSERT INTO key_versions (key_id, version, created_at, public_key) VALUES (?, ?, ?, ?)')
          .run(key.keyId, version.version, version.createdAt, version.publicKey ?? null);
        for (const appliance of version.replicas) {
          this.#prepare('INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES (?, ?, ?, ?)')
            .run(key.keyId, version.version, appliance, version.replicaVerifiedAt[appliance] ?? key.createdAt);
        }
      }
    })();
    return this.#changed(key.keyId);
  }

  allKeys(): KeyRecord[] {
    return this.#prepare<[], KeyRow>('SELECT * FROM keys ORDER BY key_id')
      .all()
      .map((row) => this.#load(row));
  }

  getKey(keyId: string): KeyRecord | undefined {
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const row = this.#prepare<[string], KeyRow>('SELECT * FROM keys WHERE key_id = ?').get(keyId);
    if (!row) return undefined;
    const key = this.#load(row);
    this.#keys.set(keyId, key);
    return key;
  }

  listKeys(afterKeyId: string | undefined, limit: number): KeyRecord[] {
    const rows = this.#prepare<[string, number], KeyRow>('SELECT * FROM keys WHERE key_id > ? ORDER BY key_id LIMIT ?')
      .all(afterKeyId ?? '', limit);
    return rows.map((row) => this.#load(row));
  }

  addVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): KeyRecord {
    this.#keys.delete(keyId);
    this.#db.transaction(() => {
      const current = this.#require(keyId);
      if (current.primaryVersion + 1 !== version) {
        throw new BrokerError(Code.ABORTED, `key ${keyId} was rotated concurrently; try again`, { reason: 'CONCURRENT_ROTATION' });
      }
      this.#insertVersion(keyId, version, createdAt, publicKey, replicas);
      this.#prepare('UPDATE keys SET primary_version = ? WHERE key_id = ?').run(version, keyId);
    })();
    return this.#changed(keyId);
  }

  setState(keyId: string, state: KeyState, deletionTime: number | undefined): KeyRecord {
    this.#keys.delete(keyId);
    this.#require(keyId);
    this.#prepare('UPDATE keys SET key_state = ?, deletion_time = ? WHERE key_id = ?').run(state, deletionTime ?? null, keyId);
    return this.#changed(keyId);
  }

  setReplica(keyId: string, version: number, applianceId: string, present: boolean, verifiedAt: number): void {
    this.#keys.delete(keyId);
    if (present) {
      this.#prepare(
          `INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (key_id, version, appliance_id) DO UPDATE SET verified_at = excluded.verified_at`,
        )
        .run(keyId, version, applianceId, verifiedAt);
    } else {
      this.#prepare('DELETE FROM key_replicas WHERE key_id = ? AND version = ? AND appliance_id = ?').run(keyId, version, applianceId);
    }
    this.#keys.delete(keyId);
    for (const listener of this.#listeners) listener(keyId);
  }

  deleteKey(keyId: string): void {
    this.#keys.delete(keyId);
    this.#prepare('DELETE FROM keys WHERE key_id = ?').run(keyId);
    this.#keys.delete(keyId);
    for (const listener of this.#listeners) listener(keyId);
  }

  keysDueForDeletion(now: number): KeyRecord[] {
    return this.#prepare<[number], KeyRow>("SELECT * FROM keys WHERE key_state = 'PENDING_DELETION' AND deletion_time <= ? ORDER BY key_id")
      .all(now)
      .map((row) => this.#load(row));
  }

  replicaCounts(): Map<string, number> {
    const rows = this.#prepare<[], { appliance_id: string; n: number }>('SELECT appliance_id, COUNT(*) AS n FROM key_replicas GROUP BY appliance_id')
      .all();
    return new Map(rows.map((row) => [row.appliance_id, row.n]));
  }

  getMeta(name: string): string | undefined {
    return this.#prepare<[string], { value: string }>('SELECT value FROM fleet_meta WHERE name = ?').get(name)?.value;
  }

  setMeta(name: string, value: string): void {
    this.#prepare('INSERT INTO fleet_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value')
      .run(name, value);
  }

  close(): void {
    this.#db.close();
  }
}
