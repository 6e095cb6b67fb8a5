import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { decodeBackup, encodeBackup, encodePayload } from './backup-archive.js';
import type { ArchivedKey, BackupContents } from './backup-archive.js';
import { backupKeyLabel } from './backup-hsm.js';
import type { BackupHsm } from './backup-hsm.js';
import { transferTrustedKey } from './fleet-kek-enrollment.js';
import type { OfficerFleetPort } from './fleet-port.js';
import { objectLabel } from './key-model.js';
import type { KeyRecord } from './key-model.js';
import type { KeyRegistry } from './key-registry.js';
import type { KeyStore } from './key-store.js';
import type { RegistryLog } from './registry-options.js';

/** Progress of a backup or restore. */
export interface BackupProgressEvent {
  stage: 'preparing' | 'wrapping' | 'sealing' | 'verifying' | 'restoring' | 'replicating';
  done: number;
  total: number;
}

/** What a backup or restore covered. */
export interface BackupResult {
  keys: number;
  keyVersions: number;
  createdAt: number;
  backupKeyId: string;
}

/** What backup and restore need. */
export interface KeyBackupOptions {
  fleet: OfficerFleetPort;
  store: KeyStore;
  registry: KeyRegistry;
  backupHsm: BackupHsm;
  /** Appliances holding the fleet KEK. */
  enrolled: ReadonlySet<string>;
  log: RegistryLog;
  clock?: () => number;
}

/**
 * Backups of the whole registry. Every key version is wrapped, inside a
 * fleet appliance, under the backup key; the backup key reaches that
 * appliance only by trusted enrollment from the backup HSM, so neither it
 * nor any key is ever in the clear outside an HSM.
 */
export class KeyBackup {
  readonly #options: KeyBackupOptions;
  readonly #clock: () => number;
  readonly #holdsBackupKey = new Set<string>();

  constructor(options: KeyBackupOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  /** Makes sure `applianceId` holds the backup key `backupKeyId`, enrolling it if needed. */
  async #ensureBackupKey(applianceId: string, backupKeyId: string): Promise<void> {
    if (this.#holdsBackupKey.has(`${applianceId}:${backupKeyId}`)) return;
    const { fleet, backupHsm } = this.#options;
    const present = await fleet.withOfficer(applianceId, (so) => so.call('kekId', { label: backupKeyLabel }));
    if (present !== null && present !== backupKeyId) {
      throw new BrokerError(Code.FAILED_PRECONDITION, `appliance ${applianceId} holds another backup key (${present})`, { reason: 'BACKUP_KEY_CONFLICT' });
    }
    if (present === null) {
      await transferTrustedKey(backupKeyLabel, backupKeyId, (body) => backupHsm.withOfficer(body), (body) => fleet.withOfficer(applianceId, body));
      this.#options.log('info', 'appliance enrolled with the backup key', { appliance: applianceId, backupKeyId });
    }
    this.#holdsBackupKey.add(`${applianceId}:${backupKeyId}`);
  }

  /** Creates a backup file of every key version. */
  async create(progress: (event: BackupProgressEvent) => void = () => undefined): Promise<{ file: Buffer; result: BackupResult }> {
    const { fleet, store, backupHsm } = this.#options;
    progress({ stage: 'preparing', done: 0, total: 1 });
    const backupKeyId = await backupHsm.ensureKeys();
    const keys = store.allKeys();
    const total = keys.reduce((n, key) => n + key.versions.length, 0);
    let done = 0;
    const archived: ArchivedKey[] = [];
    for (const key of keys) {
      const versions = [];
      for (const version of key.versions) {
        const label = objectLabel(key.keyId, version.version);
        const holders = version.replicas.filter((id) => fleet.appliance(id).available);
        let wrapped: Buffer | undefined;
        let lastError: unknown = new BrokerError(Code.UNAVAILABLE, `no reachable appliance holds ${label}`, { reason: 'NO_SOURCE' });
        for (const holder of holders) {
          try {
            await this.#ensureBackupKey(holder, backupKeyId);
            wrapped = (await fleet.executeOn(holder, 'wrapKey', { spec: key.keySpec, label, kekLabel: backupKeyLabel })).wrapped;
            break;
          } catch (error: unknown) {
            lastError = error;
          }
        }
        if (!wrapped) throw BrokerError.from(lastError);
        versions.push({
          version: version.version,
          createdAt: version.createdAt,
          wrapped: wrapped.toString('base64'),
          ...(version.publicKey ? { publicKey: version.publicKey.toString('base64') } : {}),
        });
        progress({ stage: 'wrapping', done: ++done, total });
      }
      archived.push({
        keyId: key.keyId,
        keySpec: key.keySpec,
        keyUsage: key.keyUsage,
        keyState: key.keyState,
        description: key.description,
        labels: key.labels,
        createdAt: key.createdAt,
        ...(key.deletionTime === undefined ? {} : { deletionTime: key.deletionTime }),
        primaryVersion: key.primaryVersion,
        minDecryptionVersion: key.minDecryptionVersion,
        rotationPeriodDays: key.rotationPeriodDays,
        ...(key.nextRotationTime === undefined ? {} : { nextRotationTime: key.nextRotationTime }),
        versions,
      });
    }
    const contents: BackupContents = { format: 'hsm-broker-backup', formatVersion: 1, createdAt: this.#clock(), backupKeyId, keys: archived };
    const payload = encodePayload(contents);
    progress({ stage: 'sealing', done: 0, total: 1 });
    const file = encodeBackup(payload, await backupHsm.seal(payload));
    progress({ stage: 'sealing', done: 1, total: 1 });
    this.#options.log('info', 'backup created', { keys: keys.length, keyVersions: total, backupKeyId });
    return { file, result: { keys: keys.length, keyVersions: total, createdAt: contents.createdAt, backupKeyId } };
  }

  /**
   * Restores a backup into a fleet that holds none of its keys. The file is
   * checked completely (format, digest, the backup HSM's seal, no id taken)
   * before anything changes.
   */
  async restore(file: Buffer, progress: (event: BackupProgressEvent) => void = () => undefined): Promise<BackupResult> {
    const { fleet, store, registry, backupHsm, enrolled } = this.#options;
    progress({ stage: 'verifying', done: 0, total: 1 });
    const { payload, seal, contents } = decodeBackup(file);
    const backupKeyId = await backupHsm.backupKeyId();
    if (backupKeyId !== contents.backupKeyId) {
      throw new BrokerError(Code.FAILED_PRECONDITION, `backup: made with backup key ${quoteInput(String(contents.backupKeyId))}, but the backup HSM holds ${backupKeyId ?? 'none'}; nothing was restored`, {
        reason: 'BACKUP_KEY_MISMATCH',
      });
    }
    if (!(await backupHsm.checkSeal(payload, seal))) {
      throw new BrokerError(Code.INVALID_ARGUMENT, 'backup: the seal does not match (the file was altered or not made with this backup HSM); nothing was restored', {
        reason: 'INVALID_BACKUP',
        details: { field: 'backup' },
      });
    }
    const taken = contents.keys.filter((key) => store.getKey(key.keyId) !== undefined).map((key) => key.keyId);
    if (taken.length > 0) {
      throw new BrokerError(Code.ALREADY_EXISTS, `backup: keys already exist in this fleet (${taken.slice(0, 5).map((keyId) => quoteInput(keyId)).join(', ')}${taken.length > 5 ? ', …' : ''}); restore into an empty fleet; nothing was restored`, {
        reason: 'KEY_EXISTS',
      });
    }
    progress({ stage: 'verifying', done: 1, total: 1 });

    const target = fleet.appliances.find((appliance) => appliance.available && enrolled.has(appliance.id));
    if (!target) throw new BrokerError(Code.UNAVAILABLE, 'backup: no enrolled appliance is available to restore into', { reason: 'NO_APPLIANCE_AVAILABLE' });
    await this.#ensureBackupKey(target.id, contents.backupKeyId);
    const total = contents.keys.reduce((n, key) => n + key.versions.length, 0);
    let done = 0;
    const restored: string[] = [];
    try {
      for (const key of contents.keys) {
        for (const version of key.versions) {
          await fleet.executeOn(target.id, 'unwrapKey', {
            spec: key.keySpec,
            label: objectLabel(key.keyId, version.version),
            kekLabel: backupKeyLabel,
            key: {
              wrapped: Buffer.from(version.wrapped, 'base64'),
              ...(version.publicKey ? { publicKeySpki: Buffer.from(version.publicKey, 'base64') } : {}),
            },
          });
          restored.push(objectLabel(key.keyId, version.version));
          progress({ stage: 'restoring', done: ++done, total });
        }
      }
    } catch (error: unknown) {
      await Promise.allSettled(restored.map((label) => fleet.executeOn(target.id, 'destroyKey', { label })));
      throw error;
    }
    const now = this.#clock();
    for (const key of contents.keys) {
      const record: KeyRecord = {
        keyId: key.keyId,
        keySpec: key.keySpec,
        keyUsage: key.keyUsage,
        keyState: key.keyState,
        description: key.description,
        labels: key.labels,
        createdAt: key.createdAt,
        deletionTime: key.deletionTime,
        primaryVersion: key.primaryVersion,
        minDecryptionVersion: key.minDecryptionVersion,
        rotationPeriodDays: key.rotationPeriodDays,
        nextRotationTime: key.nextRotationTime,
        versions: key.versions.map((version) => ({
          version: version.version,
          createdAt: version.createdAt,
          publicKey: version.publicKey ? Buffer.from(version.publicKey, 'base64') : undefined,
          replicas: [target.id],
          replicaVerifiedAt: { [target.id]: now },
        })),
      };
      store.importKey(record);
    }
    // Copy everything to the rest of the fleet through the fleet KEK, verified like any replica.
    done = 0;
    const others = fleet.appliances.filter((appliance) => appliance.id !== target.id && appliance.available && enrolled.has(appliance.id));
    const copies = total * others.length;
    for (const key of contents.keys) {
      for (const version of key.versions) {
        for (const other of others) {
          try {
            await registry.replicateVersion(key.keyId, version.version, other.id);
          } catch (error: unknown) {
            this.#options.log('warn', 'restored version not yet replicated; repair will retry', {
              keyId: key.keyId,
              version: version.version,
              appliance: other.id,
              error: BrokerError.from(error).message,
            });
          }
          progress({ stage: 'replicating', done: ++done, total: copies });
        }
      }
    }
    this.#options.log('info', 'backup restored', { keys: contents.keys.length, keyVersions: total, into: target.id });
    return { keys: contents.keys.length, keyVersions: total, createdAt: contents.createdAt, backupKeyId: contents.backupKeyId };
  }
}
