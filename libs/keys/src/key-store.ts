import type { BackgroundLeadership } from './background-leadership.js';
import type { KeyRecord, KeyState } from './key-model.js';

/** A new key and its first version. */
export interface NewKey {
  keyId: string;
  keySpec: KeyRecord['keySpec'];
  keyUsage: KeyRecord['keyUsage'];
  description: string;
  labels: Record<string, string>;
  createdAt: number;
  publicKey: Buffer | undefined;
  replicas: string[];
  rotationPeriodDays: number;
  nextRotationTime: number | undefined;
}

/** Settings an operator may change on an existing key. */
export interface KeySettings {
  minDecryptionVersion?: number;
  rotationPeriodDays?: number;
  nextRotationTime?: number | undefined;
}

/**
 * Reads that never hold the caller's thread. Watchers (readiness, metrics,
 * the dashboard) use these: a slow shared database then delays their
 * answer instead of the event loop, and every call keeps being served.
 */
export interface KeyStoreReads {
  /** Every key. */
  allKeys(): Promise<KeyRecord[]>;
  /** How many key versions each appliance holds. */
  replicaCounts(): Promise<Map<string, number>>;
  getMeta(name: string): Promise<string | undefined>;
}

/**
 * Where key metadata lives. The embedded SQLite store is the default; a
 * shared database lets several broker replicas use one registry. Key
 * material is never here, only ids, versions, states and replica locations.
 */
export interface KeyStore {
  /** Inserts a key with version 1. Fails with ALREADY_EXISTS when the id is taken. */
  createKey(key: NewKey): KeyRecord;
  getKey(keyId: string): KeyRecord | undefined;
  /** Keys ordered by id, starting after `afterKeyId`. */
  listKeys(afterKeyId: string | undefined, limit: number): KeyRecord[];
  /** Adds the next version and makes it primary. */
  addVersion(keyId: string, version: number, createdAt: number, publicKey: Buffer | undefined, replicas: string[]): KeyRecord;
  setState(keyId: string, state: KeyState, deletionTime: number | undefined): KeyRecord;
  /** Records that `applianceId` holds (or no longer holds) a version. */
  setReplica(keyId: string, version: number, applianceId: string, present: boolean, verifiedAt: number): void;
  /** Changes a key's settings. */
  updateSettings(keyId: string, settings: KeySettings): KeyRecord;
  /** Enabled keys whose automatic rotation is due. */
  keysDueForRotation(now: number): KeyRecord[];
  /** Inserts a key exactly as given (restore from backup). Fails with ALREADY_EXISTS when the id is taken. */
  importKey(key: KeyRecord): KeyRecord;
  /** Every key, for backups and inventory checks. */
  allKeys(): KeyRecord[];
  /** Removes a key and all its versions. */
  deleteKey(keyId: string): void;
  /** Keys pending deletion whose deletion time has passed. */
  keysDueForDeletion(now: number): KeyRecord[];
  /** How many key versions each appliance holds. */
  replicaCounts(): Map<string, number>;
  getMeta(name: string): string | undefined;
  setMeta(name: string, value: string): void;
  /** The same reads, answered asynchronously (see {@link KeyStoreReads}). */
  readonly reads: KeyStoreReads;
  /**
   * Calls `listener` after a key's record changed, with its id: changes made
   * here and, with a shared store, changes other replicas made (within about
   * a second). `undefined` means changes may have been missed (the store
   * reconnected): drop everything cached. Caches above the store (records,
   * public keys) attach here. Returns a function that detaches the listener.
   */
  onKeyChanged(listener: (keyId: string | undefined) => void): () => void;
  /**
   * Runs `body` while no other replica changes the same key (a shared store
   * holds a lock for it). Absent for a store only one process uses: the
   * registry's in-process queue is enough there.
   */
  exclusive?<T>(keyId: string, body: () => Promise<T>): Promise<T>;
  /** Takes part in electing the replica that runs background work; absent when this process is the only one. */
  lead?(holder: string): BackgroundLeadership;
  close(): void;
}
