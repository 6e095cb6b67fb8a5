import { createPublicKey } from 'node:crypto';
import type { KeyRecord, KeyVersionRecord } from './key-model.js';
import { verifyingKeyOf } from './software-verify.js';
import type { VerifyingKey } from './software-verify.js';

/** Keys whose records are kept; beyond it the least recently loaded is forgotten. */
const defaultMaxEntries = 10_000;

interface Entry {
  record: KeyRecord;
  /** Parsed public keys by version, made on first use. */
  verifying: Map<number, VerifyingKey>;
}

/**
 * The key records and parsed public keys that Verify and GetPublicKey use,
 * so that neither reads the store nor parses a SubjectPublicKeyInfo per
 * call. An entry is dropped whenever its key changes (rotation, state
 * change, settings, deletion); a store shared by several brokers calls
 * {@link invalidate} when another one changes a key.
 */
export class VerificationKeyCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;

  constructor(maxEntries = defaultMaxEntries) {
    this.#maxEntries = maxEntries;
  }

  /** Keys cached now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The record of `keyId`, from the cache or from `load` (a missing key is not cached, so creating it needs no invalidation). */
  record(keyId: string, load: (keyId: string) => KeyRecord | undefined): KeyRecord | undefined {
    return this.#entry(keyId, load)?.record;
  }

  /** The parsed public key of one version of a cached key; undefined when the version has none. */
  verifyingKey(keyId: string, version: KeyVersionRecord, load: (keyId: string) => KeyRecord | undefined): VerifyingKey | undefined {
    if (!version.publicKey) return undefined;
    const entry = this.#entry(keyId, load);
    const cached = entry?.verifying.get(version.version);
    if (cached) return cached;
    const parsed = verifyingKeyOf(createPublicKey({ key: version.publicKey, format: 'der', type: 'spki' }));
    entry?.verifying.set(version.version, parsed);
    return parsed;
  }

  /** Forgets `keyId`, or every key when it is undefined. */
  invalidate(keyId?: string): void {
    if (keyId === undefined) this.#entries.clear();
    else this.#entries.delete(keyId);
  }

  #entry(keyId: string, load: (keyId: string) => KeyRecord | undefined): Entry | undefined {
    const cached = this.#entries.get(keyId);
    if (cached) return cached;
    const record = load(keyId);
    if (!record) return undefined;
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    const entry: Entry = { record, verifying: new Map() };
    this.#entries.set(keyId, entry);
    return entry;
  }
}
