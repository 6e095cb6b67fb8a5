import { createHash, createPublicKey, randomBytes, randomUUID, verify as verifySignature, constants } from 'node:crypto';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { ExecuteOptions } from '@hsm-broker/fleet';
import type { FleetPort } from './fleet-port.js';
import { hashLength, isAsymmetric } from '@hsm-broker/pkcs11';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import { additionalData, encodeHeader, ivLength, maxPlaintextBytes, parseCiphertext } from './ciphertext-format.js';
import { fleetKekLabel } from './fleet-kek-enrollment.js';
import { keyIdPattern, objectLabel } from './key-model.js';
import type { KeyRecord, KeyUsage, KeyVersionRecord, MacAlgorithm, SigningAlgorithm } from './key-model.js';
import { checkSpecUsage, macAlgorithmsFor, macBytes, macHash, maxSignatureBytes, signatureParameters, signingAlgorithmsFor } from './key-policy.js';
import { verifyInSoftware } from './software-verify.js';
import { VerificationKeyCache } from './verification-key-cache.js';
import type { KeyStore } from './key-store.js';
import type { SweepReport } from './sweep-report.js';

/** How many appliances, in how many zones, must hold a key version before it is usable. */
export interface DurabilityPolicy {
  minAppliances: number;
  minZones: number;
}

/** Where log lines go. Messages never contain key material, plaintext or PINs. */
export type RegistryLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

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

/** Per-request options. */
export interface RequestOptions {
  /** Absolute deadline, ms since epoch. */
  deadline?: number;
  /** Told each appliance the fleet sends the call to (see ExecuteOptions.onAttempt). */
  onAttempt?: (applianceId: string) => void;
}

/** A new key's attributes. */
export interface CreateKeyInput {
  keyId: string;
  keySpec: KeyMaterialSpec;
  keyUsage: KeyUsage;
  description: string;
  labels: Record<string, string>;
  /** Rotate automatically every this many days (90 to 2560); 0 = never. */
  rotationPeriodDays: number;
}

/** Settings changed by UpdateKeySettings. */
export interface KeySettingsInput {
  minDecryptionVersion?: number | undefined;
  rotationPeriodDays?: number | undefined;
}

/** Whether a message is given whole or as its digest. */
export type MessageType = 'RAW' | 'DIGEST';

const dayMs = 24 * 60 * 60 * 1000;
/** The PKCS#11 mechanism each operation needs; a remote transport may not carry every one. */
const schemeMechanism = { ecdsa: 'CKM_ECDSA', 'rsa-pss': 'CKM_RSA_PKCS_PSS', 'rsa-pkcs1': 'CKM_RSA_PKCS' } as const;
const hmacMechanism = { sha256: 'CKM_SHA256_HMAC', sha384: 'CKM_SHA384_HMAC', sha512: 'CKM_SHA512_HMAC' } as const;
/** Largest RAW message Sign and GenerateMac accept. */
export const maxRawMessageBytes = 4096;

function checkRotationPeriod(days: number): void {
  if (days !== 0 && (!Number.isInteger(days) || days < 90 || days > 2560)) {
    throw BrokerError.invalidArgument('rotation_period_days', `must be 90 to 2560, or 0 for no automatic rotation; got ${String(days)}`, 'INVALID_ROTATION_PERIOD');
  }
}

function precondition(message: string, reason: string): BrokerError {
  return new BrokerError(Code.FAILED_PRECONDITION, message, { reason });
}

/**
 * The key registry: lifecycle, metadata, replication across the fleet, and
 * the cryptographic operations that resolve a key id to the appliances
 * holding the right version.
 */
export class KeyRegistry {
  readonly #fleet: FleetPort;
  readonly #store: KeyStore;
  readonly #durability: DurabilityPolicy;
  readonly #enrolled: () => ReadonlySet<string>;
  readonly #clock: () => number;
  readonly #log: RegistryLog;
  readonly #keyLocks = new Map<string, Promise<unknown>>();
  readonly #verificationKeys = new VerificationKeyCache();
  readonly #load = (keyId: string): KeyRecord | undefined => this.#store.getKey(keyId);

  constructor(options: KeyRegistryOptions) {
    this.#fleet = options.fleet;
    this.#store = options.store;
    this.#durability = options.durability;
    this.#enrolled = options.enrolled;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log ?? (() => undefined);
    // A store shared with other brokers reports their changes too: Verify and
    // GetPublicKey must not go on using a key another replica rotated or disabled.
    this.#store.onKeyChanged((keyId) => this.#verificationKeys.invalidate(keyId));
  }

  /** The policy in force, lowered to what the configured fleet can ever satisfy. */
  get effectiveDurability(): DurabilityPolicy {
    const zones = new Set(this.#fleet.appliances.map((appliance) => appliance.zone)).size;
    return {
      minAppliances: Math.min(this.#durability.minAppliances, this.#fleet.appliances.length),
      minZones: Math.min(this.#durability.minZones, zones),
    };
  }

  /**
   * Serialises changes to one key (rotation, state changes) without blocking
   * other keys: in this process by a queue, across replicas by the store's
   * lock when it is shared (so two replicas never make the same version).
   */
  async #exclusive<T>(keyId: string, body: () => Promise<T>): Promise<T> {
    const previous = this.#keyLocks.get(keyId) ?? Promise.resolve();
    const shared = this.#store.exclusive?.bind(this.#store);
    const locked = shared ? () => shared(keyId, body) : body;
    const next = previous.then(locked, locked);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.#keyLocks.set(keyId, settled);
    try {
      return await next;
    } finally {
      // Whatever the change did, Verify and GetPublicKey read the key afresh from now on.
      this.#verificationKeys.invalidate(keyId);
      if (this.#keyLocks.get(keyId) === settled) this.#keyLocks.delete(keyId);
    }
  }

  /**
   * Forgets what is cached of `keyId` for Verify and GetPublicKey (of every
   * key when undefined). The registry does it itself for every change it
   * makes; a key store shared with other brokers calls it when one of them
   * changes a key.
   */
  invalidateCachedKey(keyId?: string): void {
    this.#verificationKeys.invalidate(keyId);
  }

  // ---- lifecycle -------------------------------------------------------

  /** Creates a key; returns only once its first version is durable. */
  async createKey(input: CreateKeyInput, options: RequestOptions = {}): Promise<KeyRecord> {
    const keyId = input.keyId === '' ? randomUUID() : input.keyId;
    if (!keyIdPattern.test(keyId)) {
      throw BrokerError.invalidArgument('key_id', 'must be 1 to 128 characters of A-Z a-z 0-9 / _ . -', 'INVALID_KEY_ID');
    }
    checkSpecUsage(input.keySpec, input.keyUsage);
    checkRotationPeriod(input.rotationPeriodDays);
    return this.#exclusive(keyId, async () => {
      if (this.#store.getKey(keyId)) {
        throw new BrokerError(Code.ALREADY_EXISTS, `key_id: key ${quoteInput(keyId)} already exists`, { reason: 'KEY_EXISTS' });
      }
      const version = await this.#materialize(input.keySpec, objectLabel(keyId, 1), options);
      try {
        const now = this.#clock();
        return this.#store.createKey({
          keyId,
          keySpec: input.keySpec,
          keyUsage: input.keyUsage,
          description: input.description,
          labels: input.labels,
          createdAt: now,
          publicKey: version.publicKey,
          replicas: version.holders,
          rotationPeriodDays: input.rotationPeriodDays,
          nextRotationTime: input.rotationPeriodDays > 0 ? now + input.rotationPeriodDays * dayMs : undefined,
        });
      } catch (error: unknown) {
        await this.#destroyEverywhere(objectLabel(keyId, 1), version.holders);
        throw error;
      }
    });
  }

  /** Adds a new primary version on the fleet; older versions keep decrypting and verifying. */
  async rotateKey(keyId: string, options: RequestOptions = {}): Promise<KeyRecord> {
    const rotated = await this.#rotate(keyId, options, false);
    if (!rotated) throw new BrokerError(Code.INTERNAL, `key ${quoteInput(keyId)} was not rotated`);
    return rotated;
  }

  /** Rotates under the key's lock; with `onlyIfDue`, does nothing (undefined) unless automatic rotation is still due. */
  async #rotate(keyId: string, options: RequestOptions, onlyIfDue: boolean): Promise<KeyRecord | undefined> {
    return this.#exclusive(keyId, async () => {
      const key = this.#require(keyId);
      if (onlyIfDue && (key.keyState !== 'ENABLED' || key.nextRotationTime === undefined || key.nextRotationTime > this.#clock())) return undefined;
      if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
      const next = key.primaryVersion + 1;
      const version = await this.#materialize(key.keySpec, objectLabel(keyId, next), options);
      try {
        const now = this.#clock();
        const rotated = this.#store.addVersion(keyId, next, now, version.publicKey, version.holders);
        if (rotated.rotationPeriodDays > 0) {
          return this.#store.updateSettings(keyId, { nextRotationTime: now + rotated.rotationPeriodDays * dayMs });
        }
        return rotated;
      } catch (error: unknown) {
        await this.#destroyEverywhere(objectLabel(keyId, next), version.holders);
        throw error;
      }
    });
  }

  /** Changes the minimum decryption version and the rotation period. */
  async updateKeySettings(keyId: string, input: KeySettingsInput): Promise<KeyRecord> {
    if (input.rotationPeriodDays !== undefined) checkRotationPeriod(input.rotationPeriodDays);
    return this.#exclusive(keyId, () => {
      const key = this.#require(keyId);
      const min = input.minDecryptionVersion;
      if (min !== undefined && (!Number.isInteger(min) || min < 1 || min > key.primaryVersion)) {
        throw BrokerError.invalidArgument('min_decryption_version', `must be 1 to the primary version ${String(key.primaryVersion)}; got ${String(min)}`, 'INVALID_MIN_DECRYPTION_VERSION');
      }
      const days = input.rotationPeriodDays;
      return Promise.resolve(
        this.#store.updateSettings(keyId, {
          ...(min === undefined ? {} : { minDecryptionVersion: min }),
          ...(days === undefined ? {} : { rotationPeriodDays: days, nextRotationTime: days > 0 ? this.#clock() + days * dayMs : undefined }),
        }),
      );
    });
  }

  /** Rotates every enabled key whose automatic rotation is due; `done` lists them, `failures` what is left for the next sweep. */
  async rotateDueKeys(): Promise<SweepReport> {
    const report: SweepReport = { done: [], failures: [] };
    for (const key of this.#store.keysDueForRotation(this.#clock())) {
      try {
        // Another replica (or an operator) may have rotated it since the query: rotate only if still due.
        if (!(await this.#rotate(key.keyId, {}, true))) continue;
        report.done.push(key.keyId);
        this.#log('info', 'key rotated automatically', { keyId: key.keyId });
      } catch (error: unknown) {
        const message = BrokerError.from(error).message;
        report.failures.push(`${key.keyId}: ${message}`);
        this.#log('warn', 'automatic rotation failed; will try again', { keyId: key.keyId, error: message });
      }
    }
    return report;
  }

  describeKey(keyId: string): KeyRecord {
    return this.#require(keyId);
  }

  /** A page of keys ordered by id; the token is opaque to callers. */
  listKeys(pageSize: number, pageToken: string): { keys: KeyRecord[]; nextPageToken: string } {
    let after: string | undefined;
    if (pageToken !== '') {
      after = Buffer.from(pageToken, 'base64url').toString('utf8');
      if (!keyIdPattern.test(after)) throw BrokerError.invalidArgument('page_token', 'is not a token returned by ListKeys', 'INVALID_PAGE_TOKEN');
    }
    const keys = this.#store.listKeys(after, pageSize + 1);
    const page = keys.slice(0, pageSize);
    const last = page[page.length - 1];
    return {
      keys: page,
      nextPageToken: keys.length > pageSize && last ? Buffer.from(last.keyId, 'utf8').toString('base64url') : '',
    };
  }

  async enableKey(keyId: string): Promise<KeyRecord> {
    return this.#exclusive(keyId, () => {
      const key = this.#require(keyId);
      if (key.keyState === 'PENDING_DELETION') {
        throw precondition(`key ${quoteInput(keyId)} is pending deletion; cancel the deletion first`, 'KEY_PENDING_DELETION');
      }
      return Promise.resolve(this.#store.setState(keyId, 'ENABLED', undefined));
    });
  }

  async disableKey(keyId: string): Promise<KeyRecord> {
    return this.#exclusive(keyId, () => {
      const key = this.#require(keyId);
      if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
      return Promise.resolve(this.#store.setState(keyId, 'DISABLED', undefined));
    });
  }

  async scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<KeyRecord> {
    if (!Number.isInteger(pendingWindowDays) || pendingWindowDays < 7 || pendingWindowDays > 30) {
      throw BrokerError.invalidArgument('pending_window_days', `must be 7 to 30, got ${String(pendingWindowDays)}`, 'INVALID_PENDING_WINDOW');
    }
    return this.#exclusive(keyId, () => {
      const key = this.#require(keyId);
      if (key.keyState === 'PENDING_DELETION') return Promise.resolve(key);
      return Promise.resolve(this.#store.setState(keyId, 'PENDING_DELETION', this.#clock() + pendingWindowDays * dayMs));
    });
  }

  async cancelKeyDeletion(keyId: string): Promise<KeyRecord> {
    return this.#exclusive(keyId, () => {
      const key = this.#require(keyId);
      if (key.keyState !== 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is not pending deletion`, 'KEY_NOT_PENDING_DELETION');
      return Promise.resolve(this.#store.setState(keyId, 'DISABLED', undefined));
    });
  }

  /**
   * Destroys keys whose deletion window has ended, on every appliance that
   * holds them. A key stays (unusable) while some holder is unreachable, and
   * the next sweep finishes the job. `done` lists the keys destroyed
   * everywhere, `failures` every copy that could not be destroyed yet.
   */
  async destroyDueKeys(): Promise<SweepReport> {
    const report: SweepReport = { done: [], failures: [] };
    for (const key of this.#store.keysDueForDeletion(this.#clock())) {
      await this.#exclusive(key.keyId, async () => {
        // Cancelled, or destroyed by another replica, since the query: leave it.
        const current = this.#store.getKey(key.keyId);
        if (current?.keyState !== 'PENDING_DELETION' || (current.deletionTime ?? Infinity) > this.#clock()) return;
        let remaining = 0;
        for (const version of current.versions) {
          for (const applianceId of version.replicas) {
            try {
              await this.#fleet.executeOn(applianceId, 'destroyKey', { label: objectLabel(key.keyId, version.version) });
              this.#store.setReplica(key.keyId, version.version, applianceId, false, this.#clock());
            } catch (error: unknown) {
              remaining++;
              const message = BrokerError.from(error).message;
              report.failures.push(`${key.keyId} version ${String(version.version)} on ${applianceId}: ${message}`);
              this.#log('warn', 'key destruction postponed: appliance unreachable', {
                keyId: key.keyId,
                version: version.version,
                appliance: applianceId,
                error: message,
              });
            }
          }
        }
        if (remaining === 0) {
          this.#store.deleteKey(key.keyId);
          report.done.push(key.keyId);
          this.#log('info', 'key destroyed at the end of its deletion window', { keyId: key.keyId });
        }
      });
    }
    return report;
  }

  #require(keyId: string): KeyRecord {
    const key = this.#store.getKey(keyId);
    if (!key) throw new BrokerError(Code.NOT_FOUND, `key_id: key ${quoteInput(keyId)} does not exist`, { reason: 'KEY_NOT_FOUND', details: { field: 'key_id' } });
    return key;
  }

  // ---- replication -----------------------------------------------------

  /**
   * Generates a key version on one appliance and copies it, wrapped under the
   * fleet KEK, to every other enrolled appliance; each copy is verified
   * against the original before it counts. Succeeds only when the copies
   * meet the durability policy; otherwise every copy is destroyed.
   */
  async #materialize(spec: KeyMaterialSpec, label: string, options: RequestOptions): Promise<{ holders: string[]; publicKey: Buffer | undefined }> {
    const enrolled = this.#enrolled();
    const targets = this.#fleet.appliances.filter((appliance) => appliance.available && enrolled.has(appliance.id));
    const policy = this.effectiveDurability;
    this.#checkQuorum(targets.map((appliance) => appliance.id), policy, 'before creating anything');
    const abandoned: { applianceId: string; settled: Promise<unknown> }[] = [];
    const generated = await this.#fleet
      .execute('generateKey', { spec, label }, {
        candidates: targets.map((appliance) => appliance.id),
        ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
        onAbandoned: (applianceId, settled) => abandoned.push({ applianceId, settled }),
        ...(options.onAttempt === undefined ? {} : { onAttempt: options.onAttempt }),
      })
      .catch(async (error: unknown) => {
        // Still inside the key's lock: a retry of the same creation waits until this is cleaned up.
        await this.#removeAbandoned(label, abandoned);
        throw error;
      });
    const source = generated.applianceId;
    const publicKey = generated.result.publicKeySpki;
    const holders = [source];
    try {
      const wrapped = await this.#fleet.executeOn(source, 'wrapKey', { spec, label, kekLabel: fleetKekLabel });
      const copies = await Promise.allSettled(
        targets
          .filter((appliance) => appliance.id !== source)
          .map(async (appliance) => {
            await this.#fleet.executeOn(appliance.id, 'unwrapKey', { spec, label, kekLabel: fleetKekLabel, key: wrapped });
            await this.#verifyReplica(spec, label, source, appliance.id, publicKey);
            return appliance.id;
          }),
      );
      for (const copy of copies) {
        if (copy.status === 'fulfilled') holders.push(copy.value);
        else this.#log('warn', 'replica not made', { label, error: BrokerError.from(copy.reason).message });
      }
      this.#checkQuorum(holders, policy, 'after replication');
      return { holders, publicKey };
    } catch (error: unknown) {
      await this.#destroyEverywhere(label, targets.map((appliance) => appliance.id));
      throw error;
    }
  }

  /**
   * Copies one key version to `target` from a reachable holder, verifies the
   * copy and records it. Used by repair; the version stays usable throughout.
   */
  async replicateVersion(keyId: string, version: number, target: string): Promise<void> {
    const key = this.#require(keyId);
    const record = key.versions.find((candidate) => candidate.version === version);
    if (!record) throw new BrokerError(Code.NOT_FOUND, `key ${quoteInput(keyId)} has no version ${String(version)}`);
    const label = objectLabel(keyId, version);
    const sources = record.replicas.filter((id) => id !== target && this.#fleet.appliance(id).available);
    let lastError: unknown = new BrokerError(Code.UNAVAILABLE, `no reachable appliance holds ${label}`, { reason: 'NO_SOURCE', failureClass: 'appliance' });
    for (const source of sources) {
      try {
        const wrapped = await this.#fleet.executeOn(source, 'wrapKey', { spec: key.keySpec, label, kekLabel: fleetKekLabel });
        await this.#fleet.executeOn(target, 'unwrapKey', { spec: key.keySpec, label, kekLabel: fleetKekLabel, key: wrapped });
        await this.#verifyReplica(key.keySpec, label, source, target, record.publicKey);
        this.#store.setReplica(keyId, version, target, true, this.#clock());
        return;
      } catch (error: unknown) {
        lastError = error;
      }
    }
    throw BrokerError.from(lastError);
  }

  #checkQuorum(holders: string[], policy: DurabilityPolicy, when: string): void {
    const zones = new Set(holders.map((id) => this.#fleet.appliance(id).zone));
    if (holders.length < policy.minAppliances || zones.size < policy.minZones) {
      throw new BrokerError(
        Code.UNAVAILABLE,
        `durability quorum not reached ${when}: ${String(holders.length)} appliance(s) in ${String(zones.size)} zone(s) can hold the key, policy needs ${String(policy.minAppliances)} in ${String(policy.minZones)}`,
        { reason: 'DURABILITY_QUORUM_NOT_MET', failureClass: 'appliance', retryable: true },
      );
    }
  }

  /** Proves that a replica holds the same key as the source, using only HSM operations and public data. */
  async #verifyReplica(spec: KeyMaterialSpec, label: string, source: string, replica: string, publicKey: Buffer | undefined): Promise<void> {
    const probe = randomBytes(32);
    let matches: boolean;
    if (spec === 'AES_256') {
      const iv = randomBytes(ivLength);
      const aad = Buffer.from('replica-check');
      const sealed = await this.#fleet.executeOn(source, 'encrypt', { label, iv, aad, plaintext: probe });
      const opened = await this.#fleet.executeOn(replica, 'decrypt', { label, iv, aad, ciphertext: sealed });
      matches = opened.equals(probe);
    } else if (spec === 'HMAC_256') {
      const [a, b] = await Promise.all([
        this.#fleet.executeOn(source, 'generateMac', { label, hash: 'sha256', message: probe }),
        this.#fleet.executeOn(replica, 'generateMac', { label, hash: 'sha256', message: probe }),
      ]);
      matches = a.equals(b);
    } else {
      const scheme = spec.startsWith('ECC_') ? 'ecdsa' : 'rsa-pss';
      const hash = spec === 'ECC_NIST_P384' ? 'sha384' : 'sha256';
      const digest = createHash(hash).update(probe).digest();
      const signature = await this.#fleet.executeOn(replica, 'sign', { label, scheme, hash, digest });
      matches = publicKey !== undefined && verifyDigestSignature(publicKey, scheme, hash, probe, signature);
    }
    if (!matches) {
      throw new BrokerError(Code.INTERNAL, `replica of ${label} on ${replica} does not match the original`, { reason: 'REPLICA_MISMATCH' });
    }
  }

  /**
   * A generation the caller stopped waiting for (its deadline passed) still
   * finishes on the appliance and leaves a key object nobody registered.
   * Waits for each such generation to end and destroys what it made.
   */
  async #removeAbandoned(label: string, abandoned: readonly { applianceId: string; settled: Promise<unknown> }[]): Promise<void> {
    for (const { applianceId, settled } of abandoned) {
      const made = await settled.then(
        () => true,
        () => false,
      );
      if (!made) continue;
      try {
        const destroyed = await this.#fleet.executeOn(applianceId, 'destroyKey', { label });
        this.#log('warn', 'abandoned key creation cleaned up', { appliance: applianceId, label, destroyed });
      } catch (error: unknown) {
        // The reconciler reports it as an orphan and removes it once it is older than a creation can take.
        this.#log('error', 'abandoned key creation left an object behind', { appliance: applianceId, label, error: BrokerError.from(error).message });
      }
    }
  }

  async #destroyEverywhere(label: string, appliances: string[]): Promise<void> {
    await Promise.allSettled(appliances.map((id) => this.#fleet.executeOn(id, 'destroyKey', { label })));
  }

  // ---- cryptographic operations -----------------------------------------

  #usable(keyId: string, usage: KeyUsage, key: KeyRecord = this.#require(keyId)): KeyRecord {
    if (key.keyState === 'DISABLED') throw precondition(`key ${quoteInput(keyId)} is disabled`, 'KEY_DISABLED');
    if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
    if (key.keyUsage !== usage) {
      throw precondition(`key ${quoteInput(keyId)} has key_usage ${key.keyUsage}, not ${usage}`, 'WRONG_KEY_USAGE');
    }
    return key;
  }

  /** The cached record (Verify, GetPublicKey): same refusal as {@link #require} when there is none. */
  #cached(keyId: string): KeyRecord {
    const key = this.#verificationKeys.record(keyId, this.#load);
    if (!key) throw new BrokerError(Code.NOT_FOUND, `key_id: key ${quoteInput(keyId)} does not exist`, { reason: 'KEY_NOT_FOUND', details: { field: 'key_id' } });
    return key;
  }

  /** `requireReplica` false: software operations on the public key need no appliance. */
  #version(key: KeyRecord, version: number, field = 'key_version', requireReplica = true): KeyVersionRecord {
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

  #checkNotRetired(key: KeyRecord, version: number): void {
    if (version < key.minDecryptionVersion) {
      throw precondition(
        `version ${String(version)} of key ${key.keyId} is retired (minimum decryption version is ${String(key.minDecryptionVersion)})`,
        'KEY_VERSION_RETIRED',
      );
    }
  }

  /** Routing options: only holders of the version, offering the mechanism, within the deadline. */
  #options(version: KeyVersionRecord, options: RequestOptions, mechanism?: string): ExecuteOptions {
    return {
      candidates: version.replicas,
      ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
      ...(options.onAttempt === undefined ? {} : { onAttempt: options.onAttempt }),
      ...(mechanism === undefined ? {} : { mechanism }),
    };
  }

  async encrypt(keyId: string, plaintext: Buffer, context: Record<string, string>, options: RequestOptions = {}): Promise<{ ciphertext: Buffer; keyId: string; keyVersion: number }> {
    if (plaintext.length > maxPlaintextBytes) {
      throw BrokerError.invalidArgument('plaintext', `is ${String(plaintext.length)} bytes; at most ${String(maxPlaintextBytes)} are allowed`, 'PLAINTEXT_TOO_LARGE');
    }
    const key = this.#usable(keyId, 'ENCRYPT_DECRYPT');
    const version = this.#version(key, 0);
    const header = encodeHeader(key.keyId, version.version);
    const iv = randomBytes(ivLength);
    const { result } = await this.#fleet.execute(
      'encrypt',
      { label: objectLabel(key.keyId, version.version), iv, aad: additionalData(header, context), plaintext },
      this.#options(version, options, 'CKM_AES_GCM'),
    );
    return { ciphertext: Buffer.concat([header, iv, result]), keyId: key.keyId, keyVersion: version.version };
  }

  async decrypt(ciphertext: Buffer, context: Record<string, string>, options: RequestOptions = {}): Promise<{ plaintext: Buffer; keyId: string; keyVersion: number }> {
    const parsed = parseCiphertext(ciphertext);
    const key = this.#store.getKey(parsed.keyId);
    if (!key) {
      // A flipped bit in the key id lands here as often as a deleted key does.
      throw new BrokerError(Code.INVALID_ARGUMENT, 'ciphertext: names a key that does not exist', {
        reason: 'INVALID_CIPHERTEXT',
        details: { field: 'ciphertext' },
      });
    }
    this.#usable(key.keyId, 'ENCRYPT_DECRYPT');
    const version = key.versions.find((candidate) => candidate.version === parsed.keyVersion);
    if (!version) {
      throw new BrokerError(Code.INVALID_ARGUMENT, 'ciphertext: names a key version that does not exist', {
        reason: 'INVALID_CIPHERTEXT',
        details: { field: 'ciphertext' },
      });
    }
    this.#checkNotRetired(key, version.version);
    this.#version(key, version.version);
    try {
      const { result } = await this.#fleet.execute(
        'decrypt',
        { label: objectLabel(key.keyId, version.version), iv: parsed.iv, aad: additionalData(parsed.header, context), ciphertext: parsed.sealed },
        this.#options(version, options, 'CKM_AES_GCM'),
      );
      return { plaintext: result, keyId: key.keyId, keyVersion: version.version };
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      if (failure.failureClass === 'caller') {
        throw new BrokerError(Code.INVALID_ARGUMENT, 'ciphertext: authentication failed (tampered ciphertext or different encryption_context)', {
          reason: 'INVALID_CIPHERTEXT',
          details: { field: 'ciphertext' },
        });
      }
      throw failure;
    }
  }

  async reEncrypt(
    ciphertext: Buffer,
    sourceContext: Record<string, string>,
    destinationKeyId: string,
    destinationContext: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<{ ciphertext: Buffer; sourceKeyId: string; keyId: string; keyVersion: number }> {
    this.#usable(destinationKeyId, 'ENCRYPT_DECRYPT');
    const opened = await this.decrypt(ciphertext, sourceContext, options);
    try {
      const sealed = await this.encrypt(destinationKeyId, opened.plaintext, destinationContext, options);
      return { ...sealed, sourceKeyId: opened.keyId };
    } finally {
      opened.plaintext.fill(0);
    }
  }

  async generateDataKey(
    keyId: string,
    length: 16 | 32,
    context: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyVersion: number }> {
    const key = this.#usable(keyId, 'ENCRYPT_DECRYPT');
    const version = this.#version(key, 0);
    const { result: plaintext } = await this.#fleet.execute('generateRandom', { length }, this.#options(version, options));
    const sealed = await this.encrypt(keyId, plaintext, context, options);
    return { plaintext, ciphertextBlob: sealed.ciphertext, keyId: sealed.keyId, keyVersion: sealed.keyVersion };
  }

  #digest(message: Buffer, messageType: MessageType, hash: 'sha256' | 'sha384' | 'sha512'): Buffer {
    if (messageType === 'RAW') {
      if (message.length > maxRawMessageBytes) {
        throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; RAW messages are at most ${String(maxRawMessageBytes)} (send a DIGEST instead)`, 'MESSAGE_TOO_LARGE');
      }
      return createHash(hash).update(message).digest();
    }
    if (message.length !== hashLength[hash]) {
      throw BrokerError.invalidArgument('message', `a ${hash.toUpperCase()} DIGEST is ${String(hashLength[hash])} bytes, got ${String(message.length)}`, 'DIGEST_LENGTH_MISMATCH');
    }
    return message;
  }

  /** The checks of {@link #digest} without hashing: OpenSSL hashes a RAW message as it verifies. */
  #checkMessage(message: Buffer, messageType: MessageType, hash: 'sha256' | 'sha384' | 'sha512'): void {
    if (messageType === 'RAW') {
      if (message.length > maxRawMessageBytes) {
        throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; RAW messages are at most ${String(maxRawMessageBytes)} (send a DIGEST instead)`, 'MESSAGE_TOO_LARGE');
      }
      return;
    }
    if (message.length !== hashLength[hash]) {
      throw BrokerError.invalidArgument('message', `a ${hash.toUpperCase()} DIGEST is ${String(hashLength[hash])} bytes, got ${String(message.length)}`, 'DIGEST_LENGTH_MISMATCH');
    }
  }

  #checkSigningAlgorithm(key: KeyRecord, algorithm: SigningAlgorithm): void {
    if (!signingAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw BrokerError.invalidArgument(
        'signing_algorithm',
        `${algorithm} is not valid for key ${key.keyId} (${key.keySpec}); use one of ${signingAlgorithmsFor(key.keySpec).join(', ')}`,
        'INCOMPATIBLE_SIGNING_ALGORITHM',
      );
    }
  }

  async sign(keyId: string, message: Buffer, messageType: MessageType, algorithm: SigningAlgorithm, options: RequestOptions = {}): Promise<{ signature: Buffer; keyId: string; keyVersion: number }> {
    const key = this.#usable(keyId, 'SIGN_VERIFY');
    this.#checkSigningAlgorithm(key, algorithm);
    const { scheme, hash } = signatureParameters(algorithm);
    const digest = this.#digest(message, messageType, hash);
    const version = this.#version(key, 0);
    const { result } = await this.#fleet.execute('sign', { label: objectLabel(key.keyId, version.version), scheme, hash, digest }, this.#options(version, options, schemeMechanism[scheme]));
    return { signature: result, keyId: key.keyId, keyVersion: version.version };
  }

  /**
   * Verifies in software on the version's recorded public key (node:crypto):
   * no HSM capacity is used and no appliance needs to be up. The refusals
   * (unknown, disabled or pending key, wrong usage or algorithm, retired
   * version, oversized signature) are those of the HSM path.
   */
  verify(
    keyId: string,
    keyVersion: number,
    message: Buffer,
    messageType: MessageType,
    signature: Buffer,
    algorithm: SigningAlgorithm,
    _options: RequestOptions = {},
  ): Promise<{ valid: boolean; keyId: string; keyVersion: number }> {
    try {
      const key = this.#usable(keyId, 'SIGN_VERIFY', this.#cached(keyId));
      this.#checkSigningAlgorithm(key, algorithm);
      const { scheme, hash } = signatureParameters(algorithm);
      this.#checkMessage(message, messageType, hash);
      const version = this.#version(key, keyVersion, 'key_version', false);
      this.#checkNotRetired(key, version.version);
      const longest = maxSignatureBytes(key.keySpec);
      if (signature.length > longest) {
        throw BrokerError.invalidArgument('signature', `is ${String(signature.length)} bytes; a ${key.keySpec} signature is at most ${String(longest)}`, 'SIGNATURE_TOO_LARGE');
      }
      const verifying = this.#verificationKeys.verifyingKey(key.keyId, version, this.#load);
      if (!verifying) throw new BrokerError(Code.INTERNAL, `version ${String(version.version)} of ${key.keyId} has no recorded public key`);
      const valid = verifyInSoftware(verifying, scheme, hash, message, messageType === 'DIGEST', signature);
      return Promise.resolve({ valid, keyId: key.keyId, keyVersion: version.version });
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  /** The recorded public key of a version, from the cache; no appliance is asked. */
  getPublicKey(keyId: string, keyVersion: number): { publicKey: Buffer; key: KeyRecord; keyVersion: number; signingAlgorithms: SigningAlgorithm[] } {
    const key = this.#cached(keyId);
    if (!isAsymmetric(key.keySpec)) throw precondition(`key ${quoteInput(keyId)} (${key.keySpec}) has no public key`, 'NOT_ASYMMETRIC');
    if (key.keyState === 'DISABLED') throw precondition(`key ${quoteInput(keyId)} is disabled`, 'KEY_DISABLED');
    if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
    const version = this.#version(key, keyVersion, 'key_version', false);
    if (!version.publicKey) throw new BrokerError(Code.INTERNAL, `version ${String(version.version)} of ${keyId} has no recorded public key`);
    return { publicKey: version.publicKey, key, keyVersion: version.version, signingAlgorithms: signingAlgorithmsFor(key.keySpec) };
  }

  #checkMacAlgorithm(key: KeyRecord, algorithm: MacAlgorithm): void {
    if (!macAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw BrokerError.invalidArgument('mac_algorithm', `${algorithm} is not valid for key ${key.keyId} (${key.keySpec})`, 'INCOMPATIBLE_MAC_ALGORITHM');
    }
  }

  async generateMac(keyId: string, message: Buffer, algorithm: MacAlgorithm, options: RequestOptions = {}): Promise<{ mac: Buffer; keyId: string; keyVersion: number }> {
    if (message.length > maxRawMessageBytes) {
      throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; at most ${String(maxRawMessageBytes)} are allowed`, 'MESSAGE_TOO_LARGE');
    }
    const key = this.#usable(keyId, 'GENERATE_VERIFY_MAC');
    this.#checkMacAlgorithm(key, algorithm);
    const version = this.#version(key, 0);
    const { result } = await this.#fleet.execute('generateMac', { label: objectLabel(key.keyId, version.version), hash: macHash(algorithm), message }, this.#options(version, options, hmacMechanism[macHash(algorithm)]));
    return { mac: result, keyId: key.keyId, keyVersion: version.version };
  }

  async verifyMac(
    keyId: string,
    keyVersion: number,
    message: Buffer,
    mac: Buffer,
    algorithm: MacAlgorithm,
    options: RequestOptions = {},
  ): Promise<{ valid: boolean; keyId: string; keyVersion: number }> {
    if (message.length > maxRawMessageBytes) {
      throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; at most ${String(maxRawMessageBytes)} are allowed`, 'MESSAGE_TOO_LARGE');
    }
    const key = this.#usable(keyId, 'GENERATE_VERIFY_MAC');
    this.#checkMacAlgorithm(key, algorithm);
    if (mac.length > macBytes(algorithm)) {
      throw BrokerError.invalidArgument('mac', `is ${String(mac.length)} bytes; an ${algorithm} MAC is ${String(macBytes(algorithm))}`, 'MAC_TOO_LARGE');
    }
    const version = this.#version(key, keyVersion);
    this.#checkNotRetired(key, version.version);
    const { result } = await this.#fleet.execute(
      'verifyMac',
      { label: objectLabel(key.keyId, version.version), hash: macHash(algorithm), message, mac },
      this.#options(version, options, hmacMechanism[macHash(algorithm)]),
    );
    return { valid: result, keyId: key.keyId, keyVersion: version.version };
  }

  async generateRandom(length: number, options: RequestOptions = {}): Promise<Buffer> {
    if (!Number.isInteger(length) || length < 1 || length > 1024) {
      throw BrokerError.invalidArgument('num_bytes', `must be 1 to 1024, got ${String(length)}`, 'INVALID_NUM_BYTES');
    }
    const { result } = await this.#fleet.execute('generateRandom', { length }, {
      ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
      ...(options.onAttempt === undefined ? {} : { onAttempt: options.onAttempt }),
    });
    return result;
  }

  /** How many key versions each appliance holds, per the registry. */
  replicaCounts(): Map<string, number> {
    return this.#store.replicaCounts();
  }
}

/** Verifies an HSM signature with Node's own crypto, independent of any HSM. */
function verifyDigestSignature(spki: Buffer, scheme: 'ecdsa' | 'rsa-pss', hash: 'sha256' | 'sha384', message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  if (scheme === 'ecdsa') return verifySignature(hash, message, key, signature);
  return verifySignature(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hashLength[hash] }, signature);
}
