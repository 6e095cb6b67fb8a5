// The PostgreSQL store's worker thread. `pg` is asynchronous and the
// KeyStore interface is not, so the store posts each call here and waits on
// a shared slot; this thread runs the query and wakes it. The thread also
// owns the connections that must live on their own: LISTEN for other
// replicas' changes, per-key advisory locks, and the leader lock.
import { MessagePort, parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import type { PoolClient } from 'pg';
import { PgKeyQueries } from './pg-key-queries.js';
import { keyChangedChannel, lockSpace, migrate } from './pg-schema.js';
import { storeFailure, storeFailureDetail, storeReason } from './pg-store-failure.js';
import type { SerializedBrokerError } from '@hsm-broker/errors';
import type { FromWorker, PgWorkerData, SyncRequest, SyncResponse, ToWorker } from './pg-store-protocol.js';

const data = workerData as PgWorkerData & { port: MessagePort };
const parent = parentPort;
if (!parent) throw new Error('pg-store-worker runs only as a worker thread');
const signal = new Int32Array(data.signal);
const post = (message: FromWorker): void => parent.postMessage(message);

/** An outage fails every call the same way; its text is logged once in this long. */
const unavailableLogEveryMs = 5000;
let unavailableLoggedAt = 0;

/**
 * The error a caller gets for what pg threw, with pg's own text sent to the
 * server log instead (it may quote statements, tables and values).
 */
function failed(error: unknown, during: string): SerializedBrokerError {
  const failure = storeFailure(error);
  if (error !== failure && (failure.reason === storeReason.failed || failure.reason === storeReason.unavailable)) {
    const unavailable = failure.reason === storeReason.unavailable;
    const now = Date.now();
    if (!unavailable || now - unavailableLoggedAt >= unavailableLogEveryMs) {
      if (unavailable) unavailableLoggedAt = now;
      const { code, ...detail } = storeFailureDetail(error);
      post({ kind: 'log', level: unavailable ? 'warn' : 'error', message: unavailable ? 'key store unavailable' : 'key store statement failed', fields: { during, ...(code ? { code } : {}), ...detail } });
    }
  }
  return failure.toJSON();
}

const connection = {
  connectionString: data.url,
  connectionTimeoutMillis: data.timeoutMs,
  statement_timeout: data.timeoutMs,
  query_timeout: data.timeoutMs,
  keepAlive: true,
};
const pool = new pg.Pool({ ...connection, max: data.poolSize });
// Idle clients break when the server restarts; the next query reconnects.
pool.on('error', () => undefined);
// Key locks wait for other replicas' changes, so they get their own connections and a longer bound.
const lockPool = new pg.Pool({ ...connection, statement_timeout: 0, query_timeout: 0, max: Math.max(4, data.poolSize), options: '-c lock_timeout=30000' });
lockPool.on('error', () => undefined);
const queries = new PgKeyQueries(pool);
let closing = false;

type Operation = (...args: never[]) => Promise<unknown>;
const operations: Record<string, Operation> = {
  createKey: (key: Parameters<PgKeyQueries['createKey']>[0]) => queries.createKey(key),
  importKey: (key: Parameters<PgKeyQueries['importKey']>[0]) => queries.importKey(key),
  addVersion: (...args: Parameters<PgKeyQueries['addVersion']>) => queries.addVersion(...args),
  setState: (...args: Parameters<PgKeyQueries['setState']>) => queries.setState(...args),
  updateSettings: (...args: Parameters<PgKeyQueries['updateSettings']>) => queries.updateSettings(...args),
  setReplica: (...args: Parameters<PgKeyQueries['setReplica']>) => queries.setReplica(...args),
  deleteKey: (keyId: string) => queries.deleteKey(keyId),
  getKey: (keyId: string) => queries.getKey(keyId),
  listKeys: (...args: Parameters<PgKeyQueries['listKeys']>) => queries.listKeys(...args),
  allKeys: () => queries.allKeys(),
  keysDueForRotation: (now: number) => queries.keysDueForRotation(now),
  keysDueForDeletion: (now: number) => queries.keysDueForDeletion(now),
  replicaCounts: () => queries.replicaCounts(),
  getMeta: (name: string) => queries.getMeta(name),
  setMeta: (...args: Parameters<PgKeyQueries['setMeta']>) => queries.setMeta(...args),
};

function answer(request: SyncRequest): Promise<SyncResponse> {
  const operation = operations[request.op];
  const run = operation ? operation(...(request.args as never[])) : Promise.reject(new Error(`unknown store operation ${request.op}`));
  return run.then(
    (value): SyncResponse => ({ id: request.id, ok: true, value }),
    (error: unknown): SyncResponse => ({ id: request.id, ok: false, error: failed(error, request.op) }),
  );
}

data.port.on('message', (request: SyncRequest) => {
  void answer(request).then((response) => {
    data.port.postMessage(response);
    Atomics.store(signal, 0, request.id);
    Atomics.notify(signal, 0);
  });
});

// ---- per-key locks ------------------------------------------------------

const held = new Map<number, PoolClient>();
// Pooled connections come back many times; each gets its error listener once.
const quieted = new WeakSet<PoolClient>();

async function lock(id: number, keyId: string): Promise<void> {
  let client: PoolClient | undefined;
  try {
    client = await lockPool.connect();
    // A lock lost with its connection is released by the server; say so here too.
    if (!quieted.has(client)) {
      client.on('error', () => undefined);
      quieted.add(client);
    }
    await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [lockSpace.key, keyId]);
    held.set(id, client);
    post({ kind: 'locked', id });
  } catch (error: unknown) {
    client?.release(true);
    post({ kind: 'lockFailed', id, error: failed(error, 'lock') });
  }
}

async function unlock(id: number): Promise<void> {
  const client = held.get(id);
  if (!client) return;
  held.delete(id);
  try {
    await client.query('SELECT pg_advisory_unlock_all()');
    client.release();
  } catch {
    // The connection is gone, and with it the lock.
    client.release(true);
  }
}

// ---- notifications ---------------------------------------------------------

let listener: pg.Client | undefined;

async function listen(): Promise<void> {
  while (!closing) {
    const client = new pg.Client(connection);
    try {
      await client.connect();
      client.on('notification', (message) => {
        if (message.channel === keyChangedChannel && message.payload) post({ kind: 'changed', keyId: message.payload });
      });
      const lost = new Promise<void>((resolve) => {
        client.on('error', () => resolve());
        client.on('end', () => resolve());
      });
      await client.query(`LISTEN ${keyChangedChannel}`);
      listener = client;
      // Anything cached before this point may have changed unseen.
      post({ kind: 'reset' });
      // While the database is away no replica can change a key, so cached records stay valid until it returns.
      await lost;
      listener = undefined;
    } catch {
      // Not reachable yet: try again shortly.
    }
    await client.end().catch(() => undefined);
    if (!closing) await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

// ---- leadership -------------------------------------------------------------

let leading = false;
let leaderClient: pg.Client | undefined;
let leaving = false;

async function leadLoop(holder: string): Promise<void> {
  while (!closing && !leaving) {
    try {
      if (!leaderClient) {
        const client = new pg.Client(connection);
        client.on('error', () => undefined);
        await client.connect();
        leaderClient = client;
      }
      if (!leading) {
        const { rows } = await leaderClient.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, 0) AS ok', [lockSpace.leader]);
        if (rows[0]?.ok) {
          const term = await leaderClient.query<{ term: string }>('UPDATE leader_term SET term = term + 1, holder = $1, since = $2 WHERE id = 1 RETURNING term', [holder, Date.now()]);
          leading = true;
          post({ kind: 'leader', leader: true, term: Number(term.rows[0]?.term ?? 0) });
        }
      } else {
        // Still our session, still our lock: a restarted server would have dropped both.
        const { rows } = await leaderClient.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = $1 AND objid = 0 AND granted",
          [lockSpace.leader],
        );
        if (Number(rows[0]?.n ?? 0) === 0) throw new Error('leader lock lost');
      }
    } catch {
      const client = leaderClient;
      leaderClient = undefined;
      void client?.end().catch(() => undefined);
      if (leading) {
        leading = false;
        post({ kind: 'leader', leader: false, term: 0 });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, data.leaseCheckMs));
  }
  // Left the election: ending the session releases the leader lock at once.
  leading = false;
  const client = leaderClient;
  leaderClient = undefined;
  await client?.end().catch(() => undefined);
}

// ---- lifecycle ------------------------------------------------------------

parent.on('message', (message: ToWorker) => {
  if (message.kind === 'lock') void lock(message.id, message.keyId);
  else if (message.kind === 'unlock') void unlock(message.id);
  else if (message.kind === 'lead') void leadLoop(message.holder);
  else if (message.kind === 'unlead') leaving = true;
  else if (message.kind === 'read') void answer(message).then((response) => post({ kind: 'answer', response }));
  else void close();
});

async function close(): Promise<void> {
  closing = true;
  for (const id of [...held.keys()]) await unlock(id);
  await listener?.end().catch(() => undefined);
  await leaderClient?.end().catch(() => undefined);
  await pool.end().catch(() => undefined);
  await lockPool.end().catch(() => undefined);
  post({ kind: 'closed' });
}

void (async () => {
  try {
    const client = await pool.connect();
    try {
      await migrate(client);
    } finally {
      client.release();
    }
    void listen();
    post({ kind: 'ready' });
  } catch (error: unknown) {
    post({ kind: 'openFailed', error: failed(error, 'open') });
  }
})();
