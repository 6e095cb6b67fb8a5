import { PgKeyStore, SqliteKeyStore, redactStoreUrl } from '@hsm-broker/keys';
import type { KeyStore } from '@hsm-broker/keys';
import { join } from 'node:path';
import { ConfigError } from './config-error.js';
import type { Logger } from './logger.js';

/** Where key metadata lives: the embedded SQLite file, or a PostgreSQL database shared by replicas. */
export type StoreConfig = { kind: 'sqlite' } | { kind: 'postgres'; url: string };

/**
 * Reads `store` (HSMB_STORE): unset or `sqlite` for the embedded file in the
 * data directory, or a `postgres://` / `postgresql://` connection string.
 * An invalid value is named with its password masked.
 */
export function parseStoreConfig(value: unknown): StoreConfig {
  if (value === undefined || value === '' || value === 'sqlite') return { kind: 'sqlite' };
  if (typeof value === 'string' && /^postgres(ql)?:\/\/[^\s]+$/u.test(value)) {
    try {
      new URL(value);
    } catch {
      throw new ConfigError(`store (HSMB_STORE): ${JSON.stringify(redactStoreUrl(value))} is not a valid URL; expected postgres://user:password@host:port/database`);
    }
    return { kind: 'postgres', url: value };
  }
  const shown = typeof value === 'string' ? redactStoreUrl(value) : value;
  throw new ConfigError(`store (HSMB_STORE): ${JSON.stringify(shown)} is not valid; expected sqlite (the default) or postgres://user:password@host:port/database`);
}

/** Opens the configured store; PostgreSQL migrations run here, before the broker serves. */
export async function openKeyStore(config: StoreConfig, dataDir: string, log: Logger): Promise<KeyStore> {
  if (config.kind === 'sqlite') return new SqliteKeyStore(join(dataDir, 'broker.db'));
  return PgKeyStore.open(config.url, { log: (level, message, fields) => log[level](message, fields) });
}
