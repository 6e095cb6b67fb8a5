import { randomUUID } from 'node:crypto';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import type { FleetPort } from './fleet-port.js';
import { keyIdPattern, objectLabel } from './key-model.js';
import type { KeyRecord, KeyUsage } from './key-model.js';
import { checkSpecUsage } from './key-policy.js';
import type { KeyReplication } from './key-replication.js';
import { precondition } from './key-resolver.js';
import type { KeyResolver } from './key-resolver.js';
import type { KeyStore } from './key-store.js';
import type { RegistryLog, RequestOptions } from './registry-options.js';
import type { SweepReport } from './sweep-report.js';

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

/** What lifecycle needs. */
export interface KeyLifecycleOptions {
  fleet: FleetPort;
  store: KeyStore;
  resolver: KeyResolver;
  replication: KeyReplication;
  clock: () => number;
  log: RegistryLog;
}

const dayMs = 24 * 60 * 60 * 1000;

function checkRotationPeriod(days: number): void {
  if (days !== 0 && (!Number.isInteger(days) || days < 90 || days > 2560)) {
    throw BrokerError.invalidArgument('rotation_period_days', `must be 90 to 2560, or 0 for no automatic rotation; got ${String(days)}`, 'INVALID_ROTATION_PERIOD');
  }
}

/**
 * Key lifecycle: creation and rotation (each new version made durable by
 * replication before it is recorded), settings, state changes, listing, and
 * destruction at the end of the deletion window. Changes to one key are
 * serialised; each one drops what the resolver caches of the key.
 */
export class KeyLifecycle {
  readonly #fleet: FleetPort;
  readonly #store: KeyStore;
  readonly #resolver: KeyResolver;
  readonly #replication: KeyReplication;
  readonly #clock: () => number;
  readonly #log: RegistryLog;
  readonly #keyLocks = new Map<string, Promise<unknown>>();

  constructor(options: KeyLifecycleOptions) {
    this.#fleet = options.fleet;
    this.#store = options.store;
    this.#resolver = options.resolver;
    this.#replication = options.replication;
    this.#clock = options.clock;
    this.#log = options.log;
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
      this.#resolver.invalidate(keyId);
      if (this.#keyLocks.get(keyId) === settled) this.#keyLocks.delete(keyId);
    }
  }

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
      const version = await this.#replication.materialize(input.keySpec, objectLabel(keyId, 1), options);
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
        await this.#replication.destroyEverywhere(objectLabel(keyId, 1), version.holders);
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
      const key = this.#resolver.require(keyId);
      if (onlyIfDue && (key.keyState !== 'ENABLED' || key.nextRotationTime === undefined || key.nextRotationTime > this.#clock())) return undefined;
      if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
      const next = key.primaryVersion + 1;
      const version = await this.#replication.materialize(key.keySpec, objectLabel(keyId, next), options);
      try {
        const now = this.#clock();
        const rotated = this.#store.addVersion(keyId, next, now, version.publicKey, version.holders);
        if (rotated.rotationPeriodDays > 0) {
          return this.#store.updateSettings(keyId, { nextRotationTime: now + rotated.rotationPeriodDays * dayMs });
        }
        return rotated;
      } catch (error: unknown) {
        await this.#replication.destroyEverywhere(objectLabel(keyId, next), version.holders);
        throw error;
      }
    });
  }

  /** Changes the minimum decryption version and the rotation period. */
  async updateKeySettings(keyId: string, input: KeySettingsInput): Promise<KeyRecord> {
    if (input.rotationPeriodDays !== undefined) checkRotationPeriod(input.rotationPeriodDays);
    return this.#exclusive(keyId, () => {
      const key = this.#resolver.require(keyId);
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

  /** The key's record, or NOT_FOUND. */
  describeKey(keyId: string): KeyRecord {
    return this.#resolver.require(keyId);
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

  /** Makes a disabled key usable again; a key pending deletion must have its deletion cancelled first. */
  async enableKey(keyId: string): Promise<KeyRecord> {
    return this.#exclusive(keyId, () => {
      const key = this.#resolver.require(keyId);
      if (key.keyState === 'PENDING_DELETION') {
        throw precondition(`key ${quoteInput(keyId)} is pending deletion; cancel the deletion first`, 'KEY_PENDING_DELETION');
      }
      return Promise.resolve(this.#store.setState(keyId, 'ENABLED', undefined));
    });
  }

  /** Stops every use of the key until it is enabled again. */
  async disableKey(keyId: string): Promise<KeyRecord> {
    return this.#exclusive(keyId, () => {
      const key = this.#resolver.require(keyId);
      if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
      return Promise.resolve(this.#store.setState(keyId, 'DISABLED', undefined));
    });
  }

  /** Disables the key and destroys it everywhere once `pendingWindowDays` (7 to 30) have passed. */
  async scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<KeyRecord> {
    if (!Number.isInteger(pendingWindowDays) || pendingWindowDays < 7 || pendingWindowDays > 30) {
      throw BrokerError.invalidArgument('pending_window_days', `must be 7 to 30, got ${String(pendingWindowDays)}`, 'INVALID_PENDING_WINDOW');
    }
    return this.#exclusive(keyId, () => {
      const key = this.#resolver.require(keyId);
      if (key.keyState === 'PENDING_DELETION') return Promise.resolve(key);
      return Promise.resolve(this.#store.setState(keyId, 'PENDING_DELETION', this.#clock() + pendingWindowDays * dayMs));
    });
  }

  /** Takes a key out of its deletion window; it stays disabled. */
  async cancelKeyDeletion(keyId: string): Promise<KeyRecord> {
    return this.#exclusive(keyId, () => {
      const key = this.#resolver.require(keyId);
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

}
