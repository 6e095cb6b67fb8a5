import type { SerializedBrokerError } from '@hsm-broker/errors';

/** What the PostgreSQL store's worker thread is started with. */
export interface PgWorkerData {
  /** Connection string; may hold a password, so it travels only here (never argv or env). */
  url: string;
  /** Int32 slot the worker sets and notifies when a synchronous answer is posted. */
  signal: SharedArrayBuffer;
  poolSize: number;
  /** How long one statement or connection attempt may take before the store counts as unavailable. */
  timeoutMs: number;
  /** How often the leader checks its lock, and a follower tries to take it. */
  leaseCheckMs: number;
}

/** A synchronous call: one store operation and its arguments. */
export interface SyncRequest {
  id: number;
  op: string;
  args: unknown[];
}

/** The answer to a {@link SyncRequest}. */
export type SyncResponse = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedBrokerError };

/** Messages from the store to its worker over the ordinary (asynchronous) channel. */
export type ToWorker =
  | { kind: 'lock'; id: number; keyId: string }
  | { kind: 'unlock'; id: number }
  | { kind: 'lead'; holder: string }
  /** Leave the election: stop seeking the leader lock and give it up if held. */
  | { kind: 'unlead' }
  /** A read answered on the ordinary channel, so the caller's thread never waits for it. */
  | { kind: 'read'; id: number; op: 'allKeys' | 'replicaCounts' | 'getMeta'; args: unknown[] }
  | { kind: 'close' };

/** Messages from the worker to the store over the ordinary channel. */
export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'openFailed'; error: SerializedBrokerError }
  | { kind: 'locked'; id: number }
  | { kind: 'lockFailed'; id: number; error: SerializedBrokerError }
  | { kind: 'changed'; keyId: string }
  /** Listening (again): notifications may have been missed before this, so forget every cached key. */
  | { kind: 'reset' }
  | { kind: 'leader'; leader: boolean; term: number }
  /** A store failure's own text, for the server log only (callers get a stable message). */
  | { kind: 'log'; level: 'warn' | 'error'; message: string; fields: Record<string, string> }
  /** The answer to a `read`. */
  | { kind: 'answer'; response: SyncResponse }
  | { kind: 'closed' };
