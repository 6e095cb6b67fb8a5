import type { FleetPort } from './fleet-port.js';
import { KeyCrypto } from './key-crypto.js';
import type { MessageType } from './key-crypto.js';
import { KeyLifecycle } from './key-lifecycle.js';
import type { CreateKeyInput, KeySettingsInput } from './key-lifecycle.js';
import type { KeyRecord, MacAlgorithm, SigningAlgorithm } from './key-model.js';
import { KeyReplication } from './key-replication.js';
import { KeyResolver } from './key-resolver.js';
import type { KeyStore } from './key-store.js';
import type { DurabilityPolicy, RegistryLog, RequestOptions } from './registry-options.js';
import type { SweepReport } from './sweep-report.js';

/** What the registry needs. */
export interface KeyRegistryOptions {
  fleet: FleetPort;
  store: KeyStore;
  durability: DurabilityPolicy;
  /** Appliances that hold the fleet KEK and so can receive replicas. */
  enrolled: () => ReadonlySet<string>;
  /** Injectable for tests of time-based behaviour (deletion windows). */
  clock?: () => number;
  log?: RegistryLog;
}

/**
 * The key registry: lifecycle, metadata, replication across the fleet, and
 * the cryptographic operations that resolve a key id to the appliances
 * holding the right version. It puts together one {@link KeyResolver} (key
 * lookup, checks and caches) under {@link KeyLifecycle}, {@link
 * KeyReplication} and {@link KeyCrypto}, and is the one surface the broker uses.
 */
export class KeyRegistry {
  readonly #store: KeyStore;
  readonly #resolver: KeyResolver;
  readonly #replication: KeyReplication;
  readonly #lifecycle: KeyLifecycle;
  readonly #crypto: KeyCrypto;

  constructor(options: KeyRegistryOptions) {
    const { fleet, store, durability, enrolled } = options;
    const clock = options.clock ?? Date.now;
    const log = options.log ?? (() => undefined);
    this.#store = store;
    this.#resolver = new KeyResolver(store);
    this.#replication = new KeyReplication({ fleet, store, resolver: this.#resolver, durability, enrolled, clock, log });
    this.#lifecycle = new KeyLifecycle({ fleet, store, resolver: this.#resolver, replication: this.#replication, clock, log });
    this.#crypto = new KeyCrypto(fleet, this.#resolver);
  }

  /** The policy in force, lowered to what the configured fleet can ever satisfy. */
  get effectiveDurability(): DurabilityPolicy {
    return this.#replication.effectiveDurability;
  }

  /**
   * Forgets what is cached of `keyId` for Verify and GetPublicKey (of every
   * key when undefined). The registry does it itself for every change it
   * makes, and for every change its key store announces.
   */
  invalidateCachedKey(keyId?: string): void {
    this.#resolver.invalidate(keyId);
  }

  // ---- lifecycle (KeyLifecycle) ------------------------------------------

  /** Creates a key; returns only once its first version is durable. */
  createKey(input: CreateKeyInput, options: RequestOptions = {}): Promise<KeyRecord> {
    return this.#lifecycle.createKey(input, options);
  }

  /** Adds a new primary version on the fleet; older versions keep decrypting and verifying. */
  rotateKey(keyId: string, options: RequestOptions = {}): Promise<KeyRecord> {
    return this.#lifecycle.rotateKey(keyId, options);
  }

  /** Changes the minimum decryption version and the rotation period. */
  updateKeySettings(keyId: string, input: KeySettingsInput): Promise<KeyRecord> {
    return this.#lifecycle.updateKeySettings(keyId, input);
  }

  /** Rotates every enabled key whose automatic rotation is due. */
  rotateDueKeys(): Promise<SweepReport> {
    return this.#lifecycle.rotateDueKeys();
  }

  /** The key's record, or NOT_FOUND. */
  describeKey(keyId: string): KeyRecord {
    return this.#lifecycle.describeKey(keyId);
  }

  /** A page of keys ordered by id; the token is opaque to callers. */
  listKeys(pageSize: number, pageToken: string): { keys: KeyRecord[]; nextPageToken: string } {
    return this.#lifecycle.listKeys(pageSize, pageToken);
  }

  /** Makes a disabled key usable again. */
  enableKey(keyId: string): Promise<KeyRecord> {
    return this.#lifecycle.enableKey(keyId);
  }

  /** Stops every use of the key until it is enabled again. */
  disableKey(keyId: string): Promise<KeyRecord> {
    return this.#lifecycle.disableKey(keyId);
  }

  /** Schedules the key's destruction after `pendingWindowDays` (7 to 30). */
  scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<KeyRecord> {
    return this.#lifecycle.scheduleKeyDeletion(keyId, pendingWindowDays);
  }

  /** Takes a key out of its deletion window; it stays disabled. */
  cancelKeyDeletion(keyId: string): Promise<KeyRecord> {
    return this.#lifecycle.cancelKeyDeletion(keyId);
  }

  /** Destroys keys whose deletion window has ended, on every appliance that holds them. */
  destroyDueKeys(): Promise<SweepReport> {
    return this.#lifecycle.destroyDueKeys();
  }

  // ---- replication (KeyReplication) --------------------------------------

  /** Copies one key version to `target` from a reachable holder, verifies the copy and records it. */
  replicateVersion(keyId: string, version: number, target: string): Promise<void> {
    return this.#replication.replicateVersion(keyId, version, target);
  }

  /** How many key versions each appliance holds, per the registry. */
  replicaCounts(): Map<string, number> {
    return this.#store.replicaCounts();
  }

  // ---- cryptographic operations (KeyCrypto) ------------------------------

  /** Seals `plaintext` under the key's primary version. */
  encrypt(keyId: string, plaintext: Buffer, context: Record<string, string>, options: RequestOptions = {}): Promise<{ ciphertext: Buffer; keyId: string; keyVersion: number }> {
    return this.#crypto.encrypt(keyId, plaintext, context, options);
  }

  /** Opens a ciphertext made by {@link encrypt}. */
  decrypt(ciphertext: Buffer, context: Record<string, string>, options: RequestOptions = {}): Promise<{ plaintext: Buffer; keyId: string; keyVersion: number }> {
    return this.#crypto.decrypt(ciphertext, context, options);
  }

  /** Decrypts under one key and encrypts under another. */
  reEncrypt(
    ciphertext: Buffer,
    sourceContext: Record<string, string>,
    destinationKeyId: string,
    destinationContext: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<{ ciphertext: Buffer; sourceKeyId: string; keyId: string; keyVersion: number }> {
    return this.#crypto.reEncrypt(ciphertext, sourceContext, destinationKeyId, destinationContext, options);
  }

  /** A random data key, in the clear and sealed under the key. */
  generateDataKey(
    keyId: string,
    length: 16 | 32,
    context: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyVersion: number }> {
    return this.#crypto.generateDataKey(keyId, length, context, options);
  }

  /** Signs a message or digest with the key's primary version. */
  sign(keyId: string, message: Buffer, messageType: MessageType, algorithm: SigningAlgorithm, options: RequestOptions = {}): Promise<{ signature: Buffer; keyId: string; keyVersion: number }> {
    return this.#crypto.sign(keyId, message, messageType, algorithm, options);
  }

  /** Verifies in software on the version's recorded public key; refusals are those of the HSM path. */
  verify(
    keyId: string,
    keyVersion: number,
    message: Buffer,
    messageType: MessageType,
    signature: Buffer,
    algorithm: SigningAlgorithm,
    options: RequestOptions = {},
  ): Promise<{ valid: boolean; keyId: string; keyVersion: number }> {
    return this.#crypto.verify(keyId, keyVersion, message, messageType, signature, algorithm, options);
  }

  /** The recorded public key of a version, from the cache; no appliance is asked. */
  getPublicKey(keyId: string, keyVersion: number): { publicKey: Buffer; key: KeyRecord; keyVersion: number; signingAlgorithms: SigningAlgorithm[] } {
    return this.#crypto.getPublicKey(keyId, keyVersion);
  }

  /** An HMAC of `message` with the key's primary version. */
  generateMac(keyId: string, message: Buffer, algorithm: MacAlgorithm, options: RequestOptions = {}): Promise<{ mac: Buffer; keyId: string; keyVersion: number }> {
    return this.#crypto.generateMac(keyId, message, algorithm, options);
  }

  /** Checks an HMAC with the given version (0: primary). */
  verifyMac(
    keyId: string,
    keyVersion: number,
    message: Buffer,
    mac: Buffer,
    algorithm: MacAlgorithm,
    options: RequestOptions = {},
  ): Promise<{ valid: boolean; keyId: string; keyVersion: number }> {
    return this.#crypto.verifyMac(keyId, keyVersion, message, mac, algorithm, options);
  }

  /** Random bytes from any appliance (1 to 1024). */
  generateRandom(length: number, options: RequestOptions = {}): Promise<Buffer> {
    return this.#crypto.generateRandom(length, options);
  }
}
