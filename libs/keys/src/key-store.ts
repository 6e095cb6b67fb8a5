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
  close(): void;
}
