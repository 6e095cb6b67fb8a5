import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

/** What tools/test/postgres-server.mjs hands back. */
interface StartedServer {
  url: string;
  startServer(): void;
  stopServer(): void;
  stop(): void;
}

/** A database of its own for one test file, on the run's shared server or on a private one. */
export interface TestDatabase {
  /** Connection string of a fresh, empty database. */
  url: string;
  /** Stops the server when this file started it; stop/start are only offered then. */
  server: StartedServer | undefined;
  dispose(): Promise<void>;
}

const serverModule = pathToFileURL(fileURLToPath(new URL('../../../../tools/test/postgres-server.mjs', import.meta.url))).href;

/** Starts a private PostgreSQL server (tools/test/postgres-server.mjs). */
export async function startPrivatePostgres(): Promise<StartedServer> {
  const module = (await import(serverModule)) as { startPostgres(): Promise<StartedServer> };
  return module.startPostgres();
}

/**
 * A fresh database. Under `npm test` one server serves the whole run
 * (HSMB_TEST_POSTGRES_URL); a file run on its own starts one for itself,
 * as does a file that must restart its server (`privateServer`).
 * @internal
 */
export async function testDatabase(options: { privateServer?: boolean } = {}): Promise<TestDatabase> {
  const shared = options.privateServer ? undefined : process.env['HSMB_TEST_POSTGRES_URL'];
  const server = shared ? undefined : await startPrivatePostgres();
  const base = shared ?? server?.url ?? '';
  const name = `hsmb_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    server,
    async dispose() {
      if (server) {
        server.stop();
        return;
      }
      const cleanup = new pg.Client({ connectionString: base });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}
