// A private PostgreSQL server for tests: Debian's `postgresql` package,
// installed with apt when missing (as root), a fresh data directory made by
// initdb, listening only on 127.0.0.1 on a free port, run by the unprivileged
// `postgres` user (PostgreSQL refuses to run as root). run-all.mjs starts one
// for the whole integration stage and passes its URL to every test file in
// HSMB_TEST_POSTGRES_URL; a test run on its own starts one itself.
//
// The superuser password is random per server and lives only in the URL the
// caller receives and in a 0600 file handed to initdb (then deleted): it never
// appears in argv.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment variable that carries a running server's URL to test processes. */
export const postgresUrlVariable = 'HSMB_TEST_POSTGRES_URL';

const runAs = 'postgres';

/** The newest installed PostgreSQL's bin directory, or undefined. */
function findBinDir() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

/**
 * Installs Debian's `postgresql` when no server binaries are present.
 * Idempotent: does nothing when they are. Needs root to install.
 * @param {(line: string) => void} log
 * @returns {string} the bin directory
 */
export function ensurePostgresInstalled(log = () => undefined) {
  let bin = findBinDir();
  if (bin) return bin;
  if (process.getuid?.() !== 0) throw new Error('PostgreSQL is not installed and installing it needs root: apt-get install -y postgresql');
  log('installing postgresql (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { stdio: 'inherit', env });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    if (install().status !== 0) throw new Error('apt-get install postgresql failed (see output above)');
  }
  bin = findBinDir();
  if (!bin) throw new Error('postgresql installed, but no initdb under /usr/lib/postgresql/*/bin');
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Runs a PostgreSQL binary as the unprivileged user when we are root. */
function runPg(bin, name, args) {
  const file = join(bin, name);
  const [command, commandArgs] = process.getuid?.() === 0 ? ['runuser', ['-u', runAs, '--', file, ...args]] : [file, args];
  return execFileSync(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' }).toString();
}

/**
 * Starts a private PostgreSQL server. The returned handle stops it (and can
 * restart it, for outage tests) and removes its data directory on `stop()`.
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {Promise<{ url: string, port: number, dataDir: string, stopServer(): void, startServer(): void, stop(): void }>}
 */
export async function startPostgres(options = {}) {
  const log = options.log ?? (() => undefined);
  const bin = ensurePostgresInstalled(log);
  const root = mkdtempSync(join(tmpdir(), 'hsmb-pg-'));
  const dataDir = join(root, 'data');
  const password = randomBytes(18).toString('base64url');
  const pwFile = join(root, 'pw');
  writeFileSync(pwFile, password, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', runAs]).toString().trim());
    const gid = Number(execFileSync('id', ['-g', runAs]).toString().trim());
    chownSync(root, uid, gid);
    chownSync(pwFile, uid, gid);
  }
  chmodSync(root, 0o700);
  try {
    runPg(bin, 'initdb', ['-D', dataDir, '-U', 'hsmb', '--auth=scram-sha-256', `--pwfile=${pwFile}`, '--encoding=UTF8', '--no-sync']);
  } finally {
    rmSync(pwFile, { force: true });
  }
  const port = await freePort();
  const serverOptions = `-c listen_addresses=127.0.0.1 -c port=${String(port)} -c unix_socket_directories=${root} -c fsync=off -c max_connections=200`;
  const logFile = join(root, 'server.log');
  const startServer = () => {
    runPg(bin, 'pg_ctl', ['-D', dataDir, '-l', logFile, '-o', serverOptions, '-w', '-t', '60', 'start']);
  };
  const stopServer = () => {
    runPg(bin, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
  };
  startServer();
  log(`postgresql started on 127.0.0.1:${String(port)} (data ${dataDir})`);
  let stopped = false;
  return {
    url: `postgres://hsmb:${password}@127.0.0.1:${String(port)}/postgres`,
    port,
    dataDir,
    startServer,
    stopServer,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        stopServer();
      } catch {
        // Already stopped (an outage test left it down): nothing to stop.
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
