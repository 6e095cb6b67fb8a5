import { createHash, createPublicKey, randomUUID, verify } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { keyFingerprint } from '@hsm-broker/audit';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { Fleet } from '@hsm-broker/fleet';
import { fleetKekLabel } from '@hsm-broker/keys';
import type { Logger } from './logger.js';

/** Signs audit checkpoints. */
export interface CheckpointSigner {
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly spki: Buffer;
  readonly fingerprint: string;
  /** ECDSA P-256 / SHA-256 signature (DER) over `statement`. */
  sign(statement: Buffer): Promise<Buffer>;
}

/** Where the key lives, kept in the data directory (public information only). */
interface StoredSigningKey {
  label: string;
  spki: string;
  holders: string[];
  createdAt: string;
}

/**
 * Object labels of audit signing keys. They are outside the `hsmb:` label
 * space of callers' keys and the registry never lists them, so no RPC can
 * name, use, rotate or delete the key.
 */
export const auditKeyLabelPrefix = 'hsmb-audit-signing:';

/**
 * The audit signing key: an ECDSA P-256 key pair generated in the fleet's
 * HSMs and copied, wrapped under the fleet KEK, to every enrolled appliance
 * like callers' keys, but reserved to the broker.
 */
export class AuditSigningKey implements CheckpointSigner {
  readonly spki: Buffer;
  readonly fingerprint: string;
  readonly #fleet: Fleet;
  readonly #label: string;
  readonly #holders: string[];

  private constructor(fleet: Fleet, stored: StoredSigningKey) {
    this.#fleet = fleet;
    this.#label = stored.label;
    this.#holders = stored.holders;
    this.spki = Buffer.from(stored.spki, 'base64');
    this.fingerprint = keyFingerprint(this.spki);
  }

  /** Loads the key recorded in `file`, or generates and replicates a new one. */
  static async open(fleet: Fleet, enrolled: ReadonlySet<string>, file: string, log: Logger): Promise<AuditSigningKey> {
    let stored: StoredSigningKey | undefined;
    try {
      stored = JSON.parse(readFileSync(file, 'utf8')) as StoredSigningKey;
    } catch (error: unknown) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (!stored) {
      stored = await generate(fleet, enrolled);
      const scratch = `${file}.${String(process.pid)}.tmp`;
      writeFileSync(scratch, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
      renameSync(scratch, file);
      const key = new AuditSigningKey(fleet, stored);
      log.info('audit signing key generated in the fleet', { fingerprint: key.fingerprint, holders: stored.holders });
      return key;
    }
    return new AuditSigningKey(fleet, stored);
  }

  async sign(statement: Buffer): Promise<Buffer> {
    const digest = createHash('sha256').update(statement).digest();
    const { result } = await this.#fleet.execute('sign', { label: this.#label, scheme: 'ecdsa', hash: 'sha256', digest }, { candidates: this.#holders });
    // A checkpoint nobody can verify is worse than none: check before it is written.
    if (!verify('sha256', statement, createPublicKey({ key: this.spki, format: 'der', type: 'spki' }), result)) {
      throw new BrokerError(Code.INTERNAL, 'the audit signing key produced a signature that does not verify', { reason: 'AUDIT_SIGNATURE_INVALID' });
    }
    return result;
  }
}

async function generate(fleet: Fleet, enrolled: ReadonlySet<string>): Promise<StoredSigningKey> {
  const label = `${auditKeyLabelPrefix}${randomUUID()}`;
  const targets = fleet.appliances.filter((appliance) => appliance.available && enrolled.has(appliance.id)).map((appliance) => appliance.id);
  const generated = await fleet.execute('generateKey', { spec: 'ECC_NIST_P256', label }, { candidates: targets, slow: true });
  const spki = generated.result.publicKeySpki;
  if (!spki) throw new BrokerError(Code.INTERNAL, 'the HSM returned no public key for the audit signing key', { reason: 'AUDIT_KEY_FAILED' });
  const holders = [generated.applianceId];
  const wrapped = await fleet.executeOn(generated.applianceId, 'wrapKey', { spec: 'ECC_NIST_P256', label, kekLabel: fleetKekLabel });
  const copies = await Promise.allSettled(
    targets
      .filter((id) => id !== generated.applianceId)
      .map(async (id) => {
        await fleet.executeOn(id, 'unwrapKey', { spec: 'ECC_NIST_P256', label, kekLabel: fleetKekLabel, key: wrapped }, { slow: true });
        return id;
      }),
  );
  for (const copy of copies) if (copy.status === 'fulfilled') holders.push(copy.value);
  return { label, spki: spki.toString('base64'), holders, createdAt: new Date().toISOString() };
}
