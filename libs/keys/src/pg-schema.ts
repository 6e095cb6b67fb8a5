import type { PoolClient } from 'pg';

/** Advisory-lock namespaces (the first key of the two-key form), one per purpose. */
export const lockSpace = {
  migrations: 0x68736d00,
  key: 0x68736d01,
  leader: 0x68736d02,
} as const;

/** The NOTIFY channel every committed change to a key is announced on (payload: the key id). */
export const keyChangedChannel = 'hsmb_key_changed';

/**
 * Schema versions in order. A version, once released, never changes: a new
 * column is a new entry. The tables mirror the SQLite store's.
 */
const migrations: string[] = [
  `CREATE TABLE keys (
     key_id TEXT PRIMARY KEY,
     key_spec TEXT NOT NULL,
     key_usage TEXT NOT NULL,
     key_state TEXT NOT NULL,
     description TEXT NOT NULL,
     labels JSONB NOT NULL,
     created_at BIGINT NOT NULL,
     deletion_time BIGINT,
     primary_version INTEGER NOT NULL,
     min_decryption_version INTEGER NOT NULL DEFAULT 1,
     rotation_period_days INTEGER NOT NULL DEFAULT 0,
     next_rotation_time BIGINT
   );
   CREATE TABLE key_versions (
     key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
     version INTEGER NOT NULL,
     created_at BIGINT NOT NULL,
     public_key BYTEA,
     PRIMARY KEY (key_id, version)
   );
   CREATE TABLE key_replicas (
     key_id TEXT NOT NULL,
     version INTEGER NOT NULL,
     appliance_id TEXT NOT NULL,
     verified_at BIGINT NOT NULL,
     PRIMARY KEY (key_id, version, appliance_id),
     FOREIGN KEY (key_id, version) REFERENCES key_versions(key_id, version) ON DELETE CASCADE
   );
   CREATE TABLE fleet_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE leader_term (id INTEGER PRIMARY KEY CHECK (id = 1), term BIGINT NOT NULL, holder TEXT NOT NULL, since BIGINT NOT NULL);
   INSERT INTO leader_term (id, term, holder, since) VALUES (1, 0, '', 0);`,
];

/** The schema version this code expects. */
export const schemaVersion = migrations.length;

/**
 * Brings the schema up to date. Replicas starting together take the same
 * advisory lock, so exactly one applies each version and the others find
 * it applied; each version commits with its row in `schema_migrations`.
 * A database newer than this code is refused rather than guessed at.
 */
export async function migrate(client: PoolClient): Promise<number> {
  await client.query('SELECT pg_advisory_lock($1, 0)', [lockSpace.migrations]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) {
      throw new Error(`the database schema is version ${String(current)}, newer than this broker's ${String(migrations.length)}; upgrade the broker`);
    }
    for (let i = current; i < migrations.length; i++) {
      await client.query('BEGIN');
      try {
        await client.query(migrations[i] ?? '');
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [i + 1, Date.now()]);
        await client.query('COMMIT');
      } catch (error: unknown) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
    return migrations.length;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, 0)', [lockSpace.migrations]);
  }
}
