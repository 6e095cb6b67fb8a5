import Database from 'better-sqlite3';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import type { KeyRecord, KeyState, KeyUsage, KeyVersionRecord } from './key-model.js';
import type { KeyStore, NewKey } from './key-store.js';

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
    const versions = this.#db
      .prepare<[string], VersionRow>('SELECT version, created_at, public_key FROM key_versions WHERE key_id = ? ORDER BY version')
      .all(row.key_id);
    const replicas = this.#db
      .prepare<[string], { version: number; appliance_id: string }>(
        'SELECT version, appliance_id FROM key_replicas WHERE key_id = ? ORDER BY appliance_id',
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
      versions: versions.map(
        (version): KeyVersionRecord => ({
          version: version.version,
          createdAt: version.created_at,
          publicKey: version.public_key ?? undefined,
          replicas: replicas.filter((replica) => replica.version === version.version).map((replica) => replica.appliance_id),
        }),
      ),
    };
  }

  #require(keyId: string): KeyRecord {
    const key = this.getKey(keyId);
    if (!key) throw new BrokerError(Code.NOT_FOUND, `key_id: key ${keyId} does not exist`, { reason: 'KEY_NOT_FOUND' });
    return key;
  }

  createKey(key: NewKey): KeyRecord {
    this.#db.transaction(() => {
      const exists = this.#db.prepare('SELECT 1 FROM keys WHERE key_id = ?').get(key.keyId);
      if (exists) {
        throw new BrokerError(Code.ALREADY_EXISTS, `key_id: key ${key.keyId} already exists`, { reason: 'KEY_EXISTS' });
      }
      this.#db
        .prepare(
          `INSERT INTO keys (key_id, key_spec, key_usage, key_state, description, labels, created_at, deletion_time, primary_version)
           VALUES (?, ?, ?, 'ENABLED', ?, ?, ?, NULL, 1)`,
        )
        .run(key.keyId, key.keySpec, key.keyUsage, key.description, JSON.stringify(key.labels), key.createdAt);
      this.#insertVersion(key.keyId, 1, key.createdAt, key.publicKey, key.replicas);
    })();
    return this.#require(key.keyId);
  }

  #insertVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): void {
    this.#db
      .prepare('INSERT INTO key_versions (key_id, version, created_at, public_key) VALUES (?, ?, ?, ?)')
      .run(keyId, version, createdAt, publicKey ?? null);
    const insert = this.#db.prepare('INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES (?, ?, ?, ?)');
    for (const appliance of replicas) insert.run(keyId, version, appliance, createdAt);
  }

  getKey(keyId: string): KeyRecord | undefined {
    const row = this.#db.prepare<[string], KeyRow>('SELECT * FROM keys WHERE key_id = ?').get(keyId);
    return row ? this.#load(row) : undefined;
  }

  listKeys(afterKeyId: string | undefined, limit: number): KeyRecord[] {
    const rows = this.#db
      .prepare<[string, number], KeyRow>('SELECT * FROM keys WHERE key_id > ? ORDER BY key_id LIMIT ?')
      .all(afterKeyId ?? '', limit);
    return rows.map((row) => this.#load(row));
  }

  addVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): KeyRecord {
    this.#db.transaction(() => {
      const current = this.#require(keyId);
      if (current.primaryVersion + 1 !== version) {
        throw new BrokerError(Code.ABORTED, `key ${keyId} was rotated concurrently; try again`, { reason: 'CONCURRENT_ROTATION' });
      }
      this.#insertVersion(keyId, version, createdAt, publicKey, replicas);
      this.#db.prepare('UPDATE keys SET primary_version = ? WHERE key_id = ?').run(version, keyId);
    })();
    return this.#require(keyId);
  }

  setState(keyId: string, state: KeyState, deletionTime: number | undefined): KeyRecord {
    this.#require(keyId);
    this.#db.prepare('UPDATE keys SET key_state = ?, deletion_time = ? WHERE key_id = ?').run(state, deletionTime ?? null, keyId);
    return this.#require(keyId);
  }

  setReplica(keyId: string, version: number, applianceId: string, present: boolean, verifiedAt: number): void {
    if (present) {
      this.#db
        .prepare(
          `INSERT INTO key_replicas (key_id, version, appliance_id, verified_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (key_id, version, appliance_id) DO UPDATE SET verified_at = excluded.verified_at`,
        )
        .run(keyId, version, applianceId, verifiedAt);
    } else {
      this.#db.prepare('DELETE FROM key_replicas WHERE key_id = ? AND version = ? AND appliance_id = ?').run(keyId, version, applianceId);
    }
  }

  deleteKey(keyId: string): void {
    this.#db.prepare('DELETE FROM keys WHERE key_id = ?').run(keyId);
  }

  keysDueForDeletion(now: number): KeyRecord[] {
    return this.#db
      .prepare<[number], KeyRow>("SELECT * FROM keys WHERE key_state = 'PENDING_DELETION' AND deletion_time <= ? ORDER BY key_id")
      .all(now)
      .map((row) => this.#load(row));
  }

  replicaCounts(): Map<string, number> {
    const rows = this.#db
      .prepare<[], { appliance_id: string; n: number }>('SELECT appliance_id, COUNT(*) AS n FROM key_replicas GROUP BY appliance_id')
      .all();
    return new Map(rows.map((row) => [row.appliance_id, row.n]));
  }

  getMeta(name: string): string | undefined {
    return this.#db.prepare<[string], { value: string }>('SELECT value FROM fleet_meta WHERE name = ?').get(name)?.value;
  }

  setMeta(name: string, value: string): void {
    this.#db
      .prepare('INSERT INTO fleet_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value')
      .run(name, value);
  }

  close(): void {
    this.#db.close();
  }
}
