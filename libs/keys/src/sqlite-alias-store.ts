import Database from 'better-sqlite3';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { AliasStore, KeyAlias } from './alias-store.js';

interface AliasRow {
  alias_name: string;
  target_key_id: string;
  created_at: number;
  updated_at: number;
}

function aliasOf(row: AliasRow): KeyAlias {
  return { aliasName: row.alias_name, targetKeyId: row.target_key_id, createdAt: row.created_at, updatedAt: row.updated_at };
}

/**
 * Aliases in the same SQLite file as the keys, on a connection of their own.
 * The table is created if missing rather than through the key store's
 * numbered migrations, so the two stores never contend for `user_version`.
 * There is no foreign key to `keys`: a store for keys elsewhere must be able
 * to sit beside it. Whoever destroys keys removes their aliases
 * ({@link deleteAliasesOf}), as AWS KMS does when a deletion completes.
 */
export class SqliteAliasStore implements AliasStore {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    // Another connection (the key store) may be writing; wait for it instead of failing.
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS key_aliases (
       alias_name TEXT PRIMARY KEY,
       target_key_id TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       updated_at INTEGER NOT NULL
     );
     CREATE INDEX IF NOT EXISTS key_aliases_by_target ON key_aliases(target_key_id);`);
  }

  createAlias(aliasName: string, targetKeyId: string, now: number): KeyAlias {
    const inserted = this.#db
      .prepare('INSERT INTO key_aliases (alias_name, target_key_id, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(alias_name) DO NOTHING')
      .run(aliasName, targetKeyId, now, now);
    if (inserted.changes === 0) {
      throw new BrokerError(Code.ALREADY_EXISTS, `alias_name: alias ${quoteInput(aliasName)} already exists`, { reason: 'ALIAS_EXISTS', details: { field: 'alias_name' } });
    }
    return { aliasName, targetKeyId, createdAt: now, updatedAt: now };
  }

  getAlias(aliasName: string): KeyAlias | undefined {
    const row = this.#db.prepare<[string], AliasRow>('SELECT * FROM key_aliases WHERE alias_name = ?').get(aliasName);
    return row ? aliasOf(row) : undefined;
  }

  updateAlias(aliasName: string, targetKeyId: string, now: number): KeyAlias {
    const updated = this.#db.prepare('UPDATE key_aliases SET target_key_id = ?, updated_at = ? WHERE alias_name = ?').run(targetKeyId, now, aliasName);
    const alias = updated.changes === 0 ? undefined : this.getAlias(aliasName);
    if (!alias) throw new BrokerError(Code.NOT_FOUND, `alias_name: alias ${quoteInput(aliasName)} does not exist`, { reason: 'ALIAS_NOT_FOUND', details: { field: 'alias_name' } });
    return alias;
  }

  deleteAlias(aliasName: string): boolean {
    return this.#db.prepare('DELETE FROM key_aliases WHERE alias_name = ?').run(aliasName).changes > 0;
  }

  deleteAliasesOf(targetKeyId: string): number {
    return this.#db.prepare('DELETE FROM key_aliases WHERE target_key_id = ?').run(targetKeyId).changes;
  }

  listAliases(afterAliasName: string | undefined, limit: number, targetKeyId?: string): KeyAlias[] {
    const rows =
      targetKeyId === undefined
        ? this.#db.prepare<[string, number], AliasRow>('SELECT * FROM key_aliases WHERE alias_name > ? ORDER BY alias_name LIMIT ?').all(afterAliasName ?? '', limit)
        : this.#db
            .prepare<[string, string, number], AliasRow>('SELECT * FROM key_aliases WHERE target_key_id = ? AND alias_name > ? ORDER BY alias_name LIMIT ?')
            .all(targetKeyId, afterAliasName ?? '', limit);
    return rows.map(aliasOf);
  }

  close(): void {
    this.#db.close();
  }
}
