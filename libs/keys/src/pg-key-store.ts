import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { BackgroundLeadership } from './background-leadership.js';
import type { KeyRecord, KeyState } from './key-model.js';
import type { KeySettings, KeyStore, KeyStoreReads, NewKey } from './key-store.js';
import { storeReason } from './pg-store-failure.js';
import type { FromWorker, PgWorkerData, SyncResponse, ToWorker } from './pg-store-protocol.js';

/** Settings of the PostgreSQL store. */
export interface PgKeyStoreOptions {
  /** Connections for ordinary statements (default 4). */
  poolSize?: number;
  /** How long a statement or connection attempt may take before calls fail UNAVAILABLE (default 3000 ms). */
  timeoutMs?: number;
  /** How often leadership is checked and sought (default 1000 ms; a dead leader is replaced within about twice this). */
  leaseCheckMs?: number;
  /**
   * Receives pg's own text of a failure (statement, table, host), which the
   * errors callers get leave out. Nothing secret reaches it: the store holds
   * no key material, PINs or plaintext, and the connection string is never
   * part of it.
   */
  log?: (level: 'warn' | 'error', message: string, fields: Record<string, string>) => void;
}

/** Buffers cross the thread boundary as Uint8Arrays; the registry wants Buffers back. */
function revive(key: KeyRecord): KeyRecord {
  return {
    ...key,
    versions: key.versions.map((version) => ({ ...version, publicKey: version.publicKey ? Buffer.from(version.publicKey) : undefined })),
  };
}

/**
 * Removes the secrets from a connection string before it is shown anywhere:
 * the password in its user part and any query parameter that can carry one
 * (`?password=`, `?sslpassword=`, key files). A string that is not a URL is
 * shown as its scheme only.
 */
export function redactStoreUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    const scheme = /^[a-z][a-z0-9+.-]*:/iu.exec(url)?.[0];
    return scheme ? `${scheme}//***` : '***';
  }
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()]) {
    if (/pass|secret|key|token/iu.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}

/**
 * The key store on PostgreSQL, shared by every broker replica.
 *
 * The KeyStore interface is synchronous (the embedded SQLite store is), so
 * each call is run by a worker thread while this thread waits on a shared
 * slot, bounded by `timeoutMs`; on loopback a statement costs well under a
 * millisecond. Key records are cached here and dropped when any replica
 * changes them (LISTEN/NOTIFY, delivered between requests), and all at
 * once after the listening connection reconnects, so the crypto path reads
 * no table and keeps working on cached keys while the database is away.
 */
export class PgKeyStore implements KeyStore {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #signal: Int32Array;
  readonly #waitMs: number;
  readonly #keys = new Map<string, KeyRecord>();
  readonly #listeners = new Set<(keyId: string | undefined) => void>();
  readonly #locks = new Map<number, { resolve: () => void; reject: (error: BrokerError) => void }>();
  readonly #leaderListeners: ((leader: boolean, term: number) => void)[] = [];
  readonly #reads = new Map<number, { resolve: (value: unknown) => void; reject: (error: BrokerError) => void; timer: NodeJS.Timeout }>();
  #leader = { isLeader: false, term: 0 };
  /** Set by the leadership's stop() and by close(): the worker's leader messages are ignored from then on. */
  #leftElection = false;
  #nextId = 1;
  #closed = false;

  readonly #log: NonNullable<PgKeyStoreOptions['log']>;

  private constructor(worker: Worker, port: MessagePort, signal: SharedArrayBuffer, waitMs: number, log: NonNullable<PgKeyStoreOptions['log']>) {
    this.#log = log;
    this.#worker = worker;
    this.#port = port;
    this.#signal = new Int32Array(signal);
    this.#waitMs = waitMs;
    worker.on('message', (message: FromWorker) => this.#onMessage(message));
    // The worker keeps the process alive until close(); the synchronous port never needs to.
    port.unref();
  }

  /** Connects, applies pending schema migrations (under a lock shared by every replica), and starts listening for changes. */
  static async open(url: string, options: PgKeyStoreOptions = {}): Promise<PgKeyStore> {
    const signal = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const timeoutMs = options.timeoutMs ?? 3000;
    const workerData: PgWorkerData & { port: MessagePort } = {
      url,
      signal,
      poolSize: options.poolSize ?? 4,
      timeoutMs,
      leaseCheckMs: options.leaseCheckMs ?? 1000,
      port: port2,
    };
    const worker = new Worker(new URL('./pg-store-worker.js', import.meta.url), { workerData, transferList: [port2] });
    const log = options.log ?? (() => undefined);
    const logWhileOpening = (message: FromWorker): void => {
      if (message.kind === 'log') log(message.level, message.message, message.fields);
    };
    worker.on('message', logWhileOpening);
    const opened = await new Promise<FromWorker>((resolve, reject) => {
      const onMessage = (message: FromWorker): void => {
        if (message.kind !== 'ready' && message.kind !== 'openFailed') return;
        worker.off('message', onMessage);
        resolve(message);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    worker.off('message', logWhileOpening);
    if (opened.kind === 'openFailed') {
      await worker.terminate();
      const failure = BrokerError.fromJSON(opened.error);
      throw new BrokerError(failure.code, `key store ${redactStoreUrl(url)}: ${failure.message}`, { reason: failure.reason, retryable: failure.retryable });
    }
    // A connection attempt and a statement may each take timeoutMs; wait a little longer than both.
    return new PgKeyStore(worker, port1, signal, 2 * timeoutMs + 1000, log);
  }

  #onMessage(message: FromWorker): void {
    switch (message.kind) {
      case 'changed':
        this.#keys.delete(message.keyId);
        this.#emit(message.keyId);
        return;
      case 'reset':
        this.#keys.clear();
        this.#emit(undefined);
        return;
      case 'locked':
        this.#locks.get(message.id)?.resolve();
        return;
      case 'lockFailed':
        this.#locks.get(message.id)?.reject(BrokerError.fromJSON(message.error));
        this.#locks.delete(message.id);
        return;
      case 'leader':
        // A message sent before the worker saw stop() or close() may still arrive.
        if (this.#leftElection || this.#closed) return;
        this.#leader = { isLeader: message.leader, term: message.term };
        for (const listener of this.#leaderListeners) listener(message.leader, message.term);
        return;
      case 'log':
        this.#log(message.level, message.message, message.fields);
        return;
      case 'answer': {
        const read = this.#reads.get(message.response.id);
        if (!read) return;
        this.#reads.delete(message.response.id);
        clearTimeout(read.timer);
        if (message.response.ok) read.resolve(message.response.value);
        else read.reject(BrokerError.fromJSON(message.response.error));
        return;
      }
      case 'ready':
      case 'openFailed':
      case 'closed':
        return;
    }
  }

  #emit(keyId: string | undefined): void {
    for (const listener of this.#listeners) listener(keyId);
  }

  #post(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  /** Runs one operation on the worker and waits for its answer. */
  #call<T>(op: string, ...args: unknown[]): T {
    if (this.#closed) throw new BrokerError(Code.UNAVAILABLE, 'key store is closed', { reason: storeReason.unavailable });
    const id = this.#nextId++;
    Atomics.store(this.#signal, 0, 0);
    this.#port.postMessage({ id, op, args });
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      const received: { message: SyncResponse } | undefined = receiveMessageOnPort(this.#port);
      if (received) {
        // An answer to a call that timed out earlier is dropped.
        if (received.message.id !== id) continue;
        const answer = received.message;
        if (answer.ok) return answer.value as T;
        throw BrokerError.fromJSON(answer.error);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BrokerError(Code.UNAVAILABLE, 'key store unavailable: no answer in time', { reason: storeReason.unavailable, retryable: true });
      }
      Atomics.wait(this.#signal, 0, 0, left);
      Atomics.store(this.#signal, 0, 0);
    }
  }

  /** Runs one read on the worker without waiting for it; fails UNAVAILABLE when no answer comes in time. */
  #ask<T>(op: 'allKeys' | 'replicaCounts' | 'getMeta', ...args: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(new BrokerError(Code.UNAVAILABLE, 'key store is closed', { reason: storeReason.unavailable }));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#reads.delete(id);
        reject(new BrokerError(Code.UNAVAILABLE, 'key store unavailable: no answer in time', { reason: storeReason.unavailable, retryable: true }));
      }, this.#waitMs);
      timer.unref();
      this.#reads.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.#post({ kind: 'read', id, op, args });
    });
  }

  readonly reads: KeyStoreReads = {
    allKeys: async () => (await this.#ask<KeyRecord[]>('allKeys')).map(revive),
    replicaCounts: async () => new Map(await this.#ask<[string, number][]>('replicaCounts')),
    getMeta: async (name) => (await this.#ask<string | undefined>('getMeta', name)) ?? undefined,
  };

  #write(keyId: string, record: KeyRecord): KeyRecord {
    const key = revive(record);
    this.#keys.delete(keyId);
    this.#emit(keyId);
    return key;
  }

  createKey(key: NewKey): KeyRecord {
    return this.#write(key.keyId, this.#call('createKey', key));
  }

  importKey(key: KeyRecord): KeyRecord {
    return this.#write(key.keyId, this.#call('importKey', key));
  }

  addVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): KeyRecord {
    return this.#write(keyId, this.#call('addVersion', keyId, version, createdAt, publicKey, replicas));
  }

  setState(keyId: string, state: KeyState, deletionTime: number | undefined): KeyRecord {
    return this.#write(keyId, this.#call('setState', keyId, state, deletionTime));
  }

  updateSettings(keyId: string, settings: KeySettings): KeyRecord {
    return this.#write(keyId, this.#call('updateSettings', keyId, settings));
  }

  setReplica(keyId: string, version: number, applianceId: string, present: boolean, verifiedAt: number): void {
    this.#call('setReplica', keyId, version, applianceId, present, verifiedAt);
    this.#keys.delete(keyId);
    this.#emit(keyId);
  }

  deleteKey(keyId: string): void {
    this.#call('deleteKey', keyId);
    this.#keys.delete(keyId);
    this.#emit(keyId);
  }

  getKey(keyId: string): KeyRecord | undefined {
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const found = this.#call<KeyRecord | undefined>('getKey', keyId);
    if (!found) return undefined;
    const key = revive(found);
    this.#keys.set(keyId, key);
    return key;
  }

  listKeys(afterKeyId: string | undefined, limit: number): KeyRecord[] {
    return this.#call<KeyRecord[]>('listKeys', afterKeyId, limit).map(revive);
  }

  allKeys(): KeyRecord[] {
    return this.#call<KeyRecord[]>('allKeys').map(revive);
  }

  keysDueForRotation(now: number): KeyRecord[] {
    return this.#call<KeyRecord[]>('keysDueForRotation', now).map(revive);
  }

  keysDueForDeletion(now: number): KeyRecord[] {
    return this.#call<KeyRecord[]>('keysDueForDeletion', now).map(revive);
  }

  replicaCounts(): Map<string, number> {
    return new Map(this.#call<[string, number][]>('replicaCounts'));
  }

  getMeta(name: string): string | undefined {
    return this.#call<string | undefined>('getMeta', name) ?? undefined;
  }

  setMeta(name: string, value: string): void {
    this.#call('setMeta', name, value);
  }

  onKeyChanged(listener: (keyId: string | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Holds a PostgreSQL advisory lock on the key (on its own connection) while
   * `body` runs, so a change that takes HSM work (creating, rotating) never
   * overlaps the same change on another replica. The cached record is
   * dropped once the lock is held: whoever held it before may have changed it.
   */
  async exclusive<T>(keyId: string, body: () => Promise<T>): Promise<T> {
    const id = this.#nextId++;
    const locked = new Promise<void>((resolve, reject) => this.#locks.set(id, { resolve, reject }));
    this.#post({ kind: 'lock', id, keyId });
    await locked;
    try {
      this.#keys.delete(keyId);
      return await body();
    } finally {
      this.#locks.delete(id);
      this.#post({ kind: 'unlock', id });
    }
  }

  /** Starts seeking the leader lock; `holder` names this replica in the leader_term row. */
  lead(holder: string): BackgroundLeadership {
    this.#post({ kind: 'lead', holder });
    const current = (): { isLeader: boolean; term: number } => (this.#leftElection || this.#closed ? { isLeader: false, term: 0 } : this.#leader);
    const listeners = this.#leaderListeners;
    const leave = (): void => {
      if (this.#leftElection) return;
      this.#leftElection = true;
      listeners.length = 0;
      if (!this.#closed) this.#post({ kind: 'unlead' });
    };
    return {
      get isLeader() {
        return current().isLeader;
      },
      get term() {
        return current().term;
      },
      onChange: (listener) => {
        if (!this.#leftElection && !this.#closed) listeners.push(listener);
      },
      stop: leave,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#leaderListeners.length = 0;
    for (const read of this.#reads.values()) {
      clearTimeout(read.timer);
      read.reject(new BrokerError(Code.UNAVAILABLE, 'key store is closed', { reason: storeReason.unavailable }));
    }
    this.#reads.clear();
    this.#post({ kind: 'close' });
    // Give the worker a moment to end its sessions (releasing locks at once), then stop it.
    const stop = setTimeout(() => void this.#worker.terminate(), 2000);
    stop.unref();
    this.#worker.on('message', (message: FromWorker) => {
      if (message.kind === 'closed') void this.#worker.terminate();
    });
  }
}
