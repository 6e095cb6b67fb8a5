import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyMaterialSpec, KeyObjectDescription } from '@hsm-broker/pkcs11';
import { isAsymmetric } from '@hsm-broker/pkcs11';
import type { FleetPort } from './fleet-port.js';
import { keyIdPattern, objectLabelPrefix, parseObjectLabel } from './key-model.js';
import type { KeyRecord, KeyUsage, KeyVersionRecord } from './key-model.js';
import type { KeyStore } from './key-store.js';
import type { RegistryLog } from './registry-options.js';

/** One key object found on one appliance. */
export interface FoundKeyObject {
  applianceId: string;
  version: number;
  object: KeyObjectDescription;
}

/** A key as rebuilt from the appliances, with what they could not tell. */
export interface RebuiltKey {
  record: KeyRecord;
  notes: string[];
}

/** What a rebuild found and did. */
export interface RebuildReport {
  appliancesScanned: number;
  keys: RebuiltKey[];
  alreadyRegistered: string[];
  failures: string[];
  dryRun: boolean;
}

/** What a rebuild needs. */
export interface RegistryRebuildOptions {
  fleet: FleetPort;
  store: KeyStore;
  log: RegistryLog;
  clock?: () => number;
}

/** The usage a key spec's objects are made with (see key-templates in libs/pkcs11). */
function usageOf(spec: KeyMaterialSpec): KeyUsage {
  if (spec === 'AES_256') return 'ENCRYPT_DECRYPT';
  if (spec === 'HMAC_256') return 'GENERATE_VERIFY_MAC';
  return 'SIGN_VERIFY';
}

/** Whether an object's CKA_ENCRYPT / CKA_SIGN agree with the usage its spec implies. */
function attributesFit(spec: KeyMaterialSpec, object: KeyObjectDescription): boolean {
  if (spec === 'AES_256') return object.encrypts;
  return object.signs;
}

/** The value that occurs most often (the first one seen on a tie). */
function mostCommon<T>(values: readonly T[]): T | undefined {
  const counts = new Map<T, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: T | undefined;
  let bestCount = 0;
  for (const [value, count] of counts) {
    if (count > bestCount) {
      best = value;
      bestCount = count;
    }
  }
  return best;
}

/**
 * The note every rebuilt key carries in its description: what the HSMs
 * cannot know, so an operator reviews it before enabling the key.
 */
export function rebuildNote(now: number): string {
  return (
    `Rebuilt from the appliances on ${new Date(now).toISOString()}. State, description, labels, ` +
    `creation time, minimum decryption version and rotation settings are not stored on HSMs: ` +
    `the key is DISABLED until an operator reviews and enables it.`
  );
}

/**
 * Turns the objects found for one key id into a key record, or undefined
 * when no version could be used. Pure: the rules live here so they can be
 * tested without appliances.
 *
 * - Every version's copies are compared by fingerprint (the token's check
 *   value, or the public key); the largest agreeing group are the replicas,
 *   the others are left out and named in a note.
 * - The key's spec is the one most versions have; a version of another
 *   spec, or whose objects match no spec, is left out with a note.
 * - The highest version found is primary; the lowest sets the minimum
 *   decryption version, so the record never lists a version no HSM holds.
 */
export function assembleRebuiltKey(keyId: string, found: readonly FoundKeyObject[], now: number): RebuiltKey | undefined {
  const notes: string[] = [];
  const byVersion = new Map<number, FoundKeyObject[]>();
  for (const item of found) byVersion.set(item.version, [...(byVersion.get(item.version) ?? []), item]);

  const specOfVersion = new Map<number, KeyMaterialSpec>();
  for (const [version, copies] of byVersion) {
    const spec = mostCommon(copies.map((copy) => copy.object.spec).filter((value) => value !== undefined));
    if (spec === undefined) {
      const why = copies.map((copy) => `${copy.applianceId}: ${copy.object.unrecognised ?? 'unrecognised'}`).join('; ');
      notes.push(`version ${String(version)} left out: its objects match no key spec (${why})`);
      continue;
    }
    specOfVersion.set(version, spec);
  }
  const keySpec = mostCommon([...specOfVersion.values()]);
  if (keySpec === undefined) return undefined;

  const versions: KeyVersionRecord[] = [];
  for (const [version, copies] of [...byVersion].sort(([a], [b]) => a - b)) {
    const versionSpec = specOfVersion.get(version);
    if (versionSpec === undefined) continue;
    if (versionSpec !== keySpec) {
      notes.push(`version ${String(version)} left out: it is ${versionSpec}, the key's other versions are ${keySpec}`);
      continue;
    }
    const fitting = copies.filter((copy) => copy.object.spec === keySpec && attributesFit(keySpec, copy.object));
    for (const copy of copies.filter((each) => !fitting.includes(each))) {
      notes.push(`version ${String(version)} on ${copy.applianceId} left out: its type or usage attributes differ from ${keySpec}`);
    }
    // Copies whose token gives no fingerprint cannot be compared: they count
    // as replicas, unverified, and the reconciler's probes check them later.
    const comparable = fitting.filter((copy) => copy.object.fingerprint !== undefined);
    const unchecked = fitting.filter((copy) => copy.object.fingerprint === undefined);
    const fingerprint = mostCommon(comparable.map((copy) => copy.object.fingerprint));
    const verified = comparable.filter((copy) => copy.object.fingerprint === fingerprint);
    for (const copy of comparable.filter((each) => !verified.includes(each))) {
      notes.push(`version ${String(version)} on ${copy.applianceId} left out: its key material differs from the copies on ${verified.map((each) => each.applianceId).join(', ')}`);
    }
    if (unchecked.length > 0 && fitting.length > 1) {
      notes.push(`version ${String(version)}: the copies on ${unchecked.map((copy) => copy.applianceId).join(', ')} give no check value and were not compared; ResyncKeys verifies them`);
    }
    const agreeing = [...verified, ...unchecked];
    if (agreeing.length === 0) continue;
    const replicas = [...new Set(agreeing.map((copy) => copy.applianceId))].sort();
    versions.push({
      version,
      createdAt: now,
      publicKey: isAsymmetric(keySpec) ? agreeing.find((copy) => copy.object.publicKeySpki)?.object.publicKeySpki : undefined,
      replicas,
      replicaVerifiedAt: verified.length > 1 ? Object.fromEntries(verified.map((copy) => [copy.applianceId, now])) : {},
    });
  }
  const first = versions[0];
  const last = versions.at(-1);
  if (first === undefined || last === undefined) return undefined;
  const missing: number[] = [];
  for (let version = 1; version < last.version; version++) {
    if (!versions.some((each) => each.version === version)) missing.push(version);
  }
  if (missing.length > 0) notes.push(`versions ${missing.join(', ')} were found on no appliance; data under them cannot be decrypted`);
  return {
    record: {
      keyId,
      keySpec,
      keyUsage: usageOf(keySpec),
      keyState: 'DISABLED',
      description: rebuildNote(now),
      labels: {},
      createdAt: now,
      deletionTime: undefined,
      primaryVersion: last.version,
      versions,
      minDecryptionVersion: first.version,
      rotationPeriodDays: 0,
      nextRotationTime: undefined,
    },
    notes,
  };
}

/**
 * Rebuilds lost key metadata from the appliances: lists every broker key
 * object on every appliance (through the appliances' workers, logged in as
 * for any call), and registers each key id the store does not hold,
 * DISABLED. Keys the store holds are never changed, so running it on a
 * healthy registry is harmless and running it twice registers nothing new.
 */
export class RegistryRebuild {
  readonly #options: RegistryRebuildOptions;
  readonly #clock: () => number;

  constructor(options: RegistryRebuildOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  /**
   * Scans the fleet and registers what it finds, unless `dryRun`. Key ids
   * `permits` refuses are reported as failures and not registered (the
   * caller's grants cover only some keys).
   */
  async run(dryRun: boolean, permits: (keyId: string) => boolean = () => true): Promise<RebuildReport> {
    const { fleet, store, log } = this.#options;
    const now = this.#clock();
    const failures: string[] = [];
    const found = new Map<string, FoundKeyObject[]>();
    let appliancesScanned = 0;
    const inventories = await Promise.allSettled(
      fleet.appliances.map(async (appliance) => ({
        applianceId: appliance.id,
        objects: await fleet.executeOn(appliance.id, 'describeKeys', { prefix: objectLabelPrefix }),
      })),
    );
    for (const [index, inventory] of inventories.entries()) {
      if (inventory.status === 'rejected') {
        failures.push(`${fleet.appliances[index]?.id ?? '?'}: inventory failed: ${BrokerError.from(inventory.reason).message}`);
        continue;
      }
      appliancesScanned += 1;
      for (const object of inventory.value.objects) {
        const parsed = parseObjectLabel(object.label);
        if (parsed === undefined || !keyIdPattern.test(parsed.keyId) || parsed.version < 1) {
          failures.push(`${inventory.value.applianceId}: '${object.label}' is not a broker key label`);
          continue;
        }
        const list = found.get(parsed.keyId) ?? [];
        list.push({ applianceId: inventory.value.applianceId, version: parsed.version, object });
        found.set(parsed.keyId, list);
      }
    }
    if (appliancesScanned === 0 && fleet.appliances.length > 0) {
      throw new BrokerError(Code.UNAVAILABLE, `no appliance could be scanned: ${failures.join('; ')}`, {
        reason: 'NO_APPLIANCE_SCANNED',
        failureClass: 'appliance',
      });
    }

    const keys: RebuiltKey[] = [];
    const alreadyRegistered: string[] = [];
    for (const keyId of [...found.keys()].sort()) {
      if (store.getKey(keyId) !== undefined) {
        alreadyRegistered.push(keyId);
        continue;
      }
      if (!permits(keyId)) {
        failures.push(`${keyId}: not rebuilt: the caller's grants do not cover this key`);
        continue;
      }
      const rebuilt = assembleRebuiltKey(keyId, found.get(keyId) ?? [], now);
      if (rebuilt === undefined) {
        failures.push(`${keyId}: no usable version on any appliance`);
        continue;
      }
      if (!dryRun) {
        try {
          store.importKey(rebuilt.record);
        } catch (error: unknown) {
          // Created meanwhile (by a caller or another replica): theirs stands.
          if (BrokerError.from(error).code === Code.ALREADY_EXISTS) {
            alreadyRegistered.push(keyId);
            continue;
          }
          throw error;
        }
      }
      keys.push(rebuilt);
    }
    log(dryRun ? 'info' : 'warn', dryRun ? 'registry rebuild (dry run)' : 'registry rebuilt from the appliances', {
      appliancesScanned,
      keys: keys.length,
      alreadyRegistered: alreadyRegistered.length,
      failures: failures.length,
    });
    return { appliancesScanned, keys, alreadyRegistered, failures, dryRun };
  }
}
