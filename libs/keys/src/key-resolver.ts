import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { KeyRecord, KeyUsage, KeyVersionRecord } from './key-model.js';
import type { KeyStore } from './key-store.js';
import type { VerifyingKey } from './software-verify.js';
import { VerificationKeyCache } from './verification-key-cache.js';

/** A FAILED_PRECONDITION refusal with a stable reason. */
export function precondition(message: string, reason: string): BrokerError {
  return new BrokerError(Code.FAILED_PRECONDITION, message, { reason });
}

function keyNotFound(keyId: string): BrokerError {
  return new BrokerError(Code.NOT_FOUND, `key_id: key ${quoteInput(keyId)} does not exist`, { reason: 'KEY_NOT_FOUND', details: { field: 'key_id' } });
}

/**
 * Finds a key's record and version and refuses, with the documented errors,
 * what may not be used: an unknown key or version (NOT_FOUND), a disabled or
 * pending key, a key of another usage, a retired version
 * (FAILED_PRECONDITION), a version no appliance holds (UNAVAILABLE).
 *
 * Records come from two caches, neither of them re-read per call: the key
 * store's own (dropped on every write to the key) for operations routed to
 * an HSM, and a {@link VerificationKeyCache} of records and parsed public
 * keys for Verify and GetPublicKey. The latter is dropped for a key on every
 * change the store announces (this broker's and, with a shared store, other
 * brokers'), and by lifecycle after each change it makes under the key's lock.
 */
export class KeyResolver {
  readonly #store: KeyStore;
  readonly #verificationKeys: VerificationKeyCache;
  readonly #load = (keyId: string): KeyRecord | undefined => this.#store.getKey(keyId);

  constructor(store: KeyStore, verificationKeys = new VerificationKeyCache()) {
    this.#store = store;
    this.#verificationKeys = verificationKeys;
    // A store shared with other brokers reports their changes too: Verify and
    // GetPublicKey must not go on using a key another replica rotated or disabled.
    this.#store.onKeyChanged((keyId) => this.#verificationKeys.invalidate(keyId));
  }

  /** The key's record, or undefined; for callers that refuse an unknown key their own way (Decrypt). */
  find(keyId: string): KeyRecord | undefined {
    return this.#store.getKey(keyId);
  }

  /** The key's record, or NOT_FOUND (KEY_NOT_FOUND, field key_id). */
  require(keyId: string): KeyRecord {
    const key = this.#store.getKey(keyId);
    if (!key) throw keyNotFound(keyId);
    return key;
  }

  /** The record Verify and GetPublicKey use, from their cache; same refusal as {@link require}. */
  cached(keyId: string): KeyRecord {
    const key = this.#verificationKeys.record(keyId, this.#load);
    if (!key) throw keyNotFound(keyId);
    return key;
  }

  /** `key` (by default the stored record of `keyId`) if it is enabled and made for `usage`. */
  usable(keyId: string, usage: KeyUsage, key: KeyRecord = this.require(keyId)): KeyRecord {
    if (key.keyState === 'DISABLED') throw precondition(`key ${quoteInput(keyId)} is disabled`, 'KEY_DISABLED');
    if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
    if (key.keyUsage !== usage) {
      throw precondition(`key ${quoteInput(keyId)} has key_usage ${key.keyUsage}, not ${usage}`, 'WRONG_KEY_USAGE');
    }
    return key;
  }

  /**
   * Version `version` of `key` (0: the primary). `requireReplica` false:
   * software operations on the public key need no appliance.
   */
  version(key: KeyRecord, version: number, field = 'key_version', requireReplica = true): KeyVersionRecord {
    const wanted = version === 0 ? key.primaryVersion : version;
    const found = key.versions.find((candidate) => candidate.version === wanted);
    if (!found) {
      throw new BrokerError(Code.NOT_FOUND, `${field}: key ${key.keyId} has no version ${String(wanted)}`, {
        reason: 'KEY_VERSION_NOT_FOUND',
        details: { field },
      });
    }
    if (requireReplica && found.replicas.length === 0) {
      throw new BrokerError(Code.UNAVAILABLE, `no appliance holds version ${String(wanted)} of key ${key.keyId}`, {
        reason: 'NO_REPLICA',
        failureClass: 'appliance',
      });
    }
    return found;
  }

  /** Refuses a version below the key's minimum decryption version (KEY_VERSION_RETIRED). */
  checkNotRetired(key: KeyRecord, version: number): void {
    if (version < key.minDecryptionVersion) {
      throw precondition(
        `version ${String(version)} of key ${key.keyId} is retired (minimum decryption version is ${String(key.minDecryptionVersion)})`,
        'KEY_VERSION_RETIRED',
      );
    }
  }

  /** The parsed public key of a version of a cached key, parsed once; undefined when it has none. */
  verifyingKey(keyId: string, version: KeyVersionRecord): VerifyingKey | undefined {
    return this.#verificationKeys.verifyingKey(keyId, version, this.#load);
  }

  /** Forgets what is cached of `keyId` for Verify and GetPublicKey (of every key when undefined). */
  invalidate(keyId?: string): void {
    this.#verificationKeys.invalidate(keyId);
  }
}
