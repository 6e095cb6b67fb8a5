import { createHash, createPublicKey, randomBytes, verify as verifySignature, constants } from 'node:crypto';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { hashLength } from '@hsm-broker/pkcs11';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import { ivLength } from './ciphertext-format.js';
import { checkQuorum, effectiveDurability } from './durability-quorum.js';
import { fleetKekLabel } from './fleet-kek-enrollment.js';
import type { FleetPort } from './fleet-port.js';
import { objectLabel } from './key-model.js';
import type { KeyResolver } from './key-resolver.js';
import type { KeyStore } from './key-store.js';
import type { DurabilityPolicy, RegistryLog, RequestOptions } from './registry-options.js';

/** What replication needs. */
export interface KeyReplicationOptions {
  fleet: FleetPort;
  store: KeyStore;
  resolver: KeyResolver;
  durability: DurabilityPolicy;
  /** Appliances that hold the fleet KEK and so can receive replicas. */
  enrolled: () => ReadonlySet<string>;
  clock: () => number;
  log: RegistryLog;
}

/** A key version made durable: who holds it, and its public key for key pairs. */
export interface MaterializedVersion {
  holders: string[];
  publicKey: Buffer | undefined;
}

/**
 * Puts key versions on enough appliances: generation on one, copies to the
 * others under the fleet KEK, each copy proven to match before it counts,
 * and the durability quorum checked before and after. Also repairs a
 * missing replica and destroys copies that must not stay.
 */
export class KeyReplication {
  readonly #options: KeyReplicationOptions;

  constructor(options: KeyReplicationOptions) {
    this.#options = options;
  }

  /** The policy in force, lowered to what the configured fleet can ever satisfy. */
  get effectiveDurability(): DurabilityPolicy {
    return effectiveDurability(this.#options.durability, this.#options.fleet.appliances);
  }

  /**
   * Generates a key version on one appliance and copies it, wrapped under the
   * fleet KEK, to every other enrolled appliance; each copy is verified
   * against the original before it counts. Succeeds only when the copies
   * meet the durability policy; otherwise every copy is destroyed.
   */
  async materialize(spec: KeyMaterialSpec, label: string, options: RequestOptions): Promise<MaterializedVersion> {
    const { fleet, log } = this.#options;
    const enrolled = this.#options.enrolled();
    const targets = fleet.appliances.filter((appliance) => appliance.available && enrolled.has(appliance.id)).map((appliance) => appliance.id);
    const policy = this.effectiveDurability;
    this.#checkQuorum(targets, policy, 'before creating anything');
    const abandoned: { applianceId: string; settled: Promise<unknown> }[] = [];
    const generated = await fleet
      .execute('generateKey', { spec, label }, {
        candidates: targets,
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
      const wrapped = await fleet.executeOn(source, 'wrapKey', { spec, label, kekLabel: fleetKekLabel });
      const copies = await Promise.allSettled(
        targets
          .filter((id) => id !== source)
          .map(async (id) => {
            await fleet.executeOn(id, 'unwrapKey', { spec, label, kekLabel: fleetKekLabel, key: wrapped });
            await this.#verifyReplica(spec, label, source, id, publicKey);
            return id;
          }),
      );
      for (const copy of copies) {
        if (copy.status === 'fulfilled') holders.push(copy.value);
        else log('warn', 'replica not made', { label, error: BrokerError.from(copy.reason).message });
      }
      this.#checkQuorum(holders, policy, 'after replication');
      return { holders, publicKey };
    } catch (error: unknown) {
      await this.destroyEverywhere(label, targets);
      throw error;
    }
  }

  /**
   * Copies one key version to `target` from a reachable holder, verifies the
   * copy and records it. Used by repair; the version stays usable throughout.
   */
  async replicateVersion(keyId: string, version: number, target: string): Promise<void> {
    const { fleet, store, resolver, clock } = this.#options;
    const key = resolver.require(keyId);
    const record = key.versions.find((candidate) => candidate.version === version);
    if (!record) throw new BrokerError(Code.NOT_FOUND, `key ${quoteInput(keyId)} has no version ${String(version)}`);
    const label = objectLabel(keyId, version);
    const sources = record.replicas.filter((id) => id !== target && fleet.appliance(id).available);
    let lastError: unknown = new BrokerError(Code.UNAVAILABLE, `no reachable appliance holds ${label}`, { reason: 'NO_SOURCE', failureClass: 'appliance' });
    for (const source of sources) {
      try {
        const wrapped = await fleet.executeOn(source, 'wrapKey', { spec: key.keySpec, label, kekLabel: fleetKekLabel });
        await fleet.executeOn(target, 'unwrapKey', { spec: key.keySpec, label, kekLabel: fleetKekLabel, key: wrapped });
        await this.#verifyReplica(key.keySpec, label, source, target, record.publicKey);
        store.setReplica(keyId, version, target, true, clock());
        return;
      } catch (error: unknown) {
        lastError = error;
      }
    }
    throw BrokerError.from(lastError);
  }

  /** Destroys `label` on each of `appliances`, as far as they can be reached; failures are left to the reconciler. */
  async destroyEverywhere(label: string, appliances: readonly string[]): Promise<void> {
    await Promise.allSettled(appliances.map((id) => this.#options.fleet.executeOn(id, 'destroyKey', { label })));
  }

  #checkQuorum(holders: readonly string[], policy: DurabilityPolicy, when: string): void {
    checkQuorum(holders, (id) => this.#options.fleet.appliance(id).zone, policy, when);
  }

  /** Proves that a replica holds the same key as the source, using only HSM operations and public data. */
  async #verifyReplica(spec: KeyMaterialSpec, label: string, source: string, replica: string, publicKey: Buffer | undefined): Promise<void> {
    const { fleet } = this.#options;
    const probe = randomBytes(32);
    let matches: boolean;
    if (spec === 'AES_256') {
      const iv = randomBytes(ivLength);
      const aad = Buffer.from('replica-check');
      const sealed = await fleet.executeOn(source, 'encrypt', { label, iv, aad, plaintext: probe });
      const opened = await fleet.executeOn(replica, 'decrypt', { label, iv, aad, ciphertext: sealed });
      matches = opened.equals(probe);
    } else if (spec === 'HMAC_256') {
      const [a, b] = await Promise.all([
        fleet.executeOn(source, 'generateMac', { label, hash: 'sha256', message: probe }),
        fleet.executeOn(replica, 'generateMac', { label, hash: 'sha256', message: probe }),
      ]);
      matches = a.equals(b);
    } else {
      const scheme = spec.startsWith('ECC_') ? 'ecdsa' : 'rsa-pss';
      const hash = spec === 'ECC_NIST_P384' ? 'sha384' : 'sha256';
      const digest = createHash(hash).update(probe).digest();
      const signature = await fleet.executeOn(replica, 'sign', { label, scheme, hash, digest });
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
    const { fleet, log } = this.#options;
    for (const { applianceId, settled } of abandoned) {
      const made = await settled.then(
        () => true,
        () => false,
      );
      if (!made) continue;
      try {
        const destroyed = await fleet.executeOn(applianceId, 'destroyKey', { label });
        log('warn', 'abandoned key creation cleaned up', { appliance: applianceId, label, destroyed });
      } catch (error: unknown) {
        // The reconciler reports it as an orphan and removes it once it is older than a creation can take.
        log('error', 'abandoned key creation left an object behind', { appliance: applianceId, label, error: BrokerError.from(error).message });
      }
    }
  }
}

/** Verifies an HSM signature with Node's own crypto, independent of any HSM. */
function verifyDigestSignature(spki: Buffer, scheme: 'ecdsa' | 'rsa-pss', hash: 'sha256' | 'sha384', message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  if (scheme === 'ecdsa') return verifySignature(hash, message, key, signature);
  return verifySignature(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hashLength[hash] }, signature);
}
