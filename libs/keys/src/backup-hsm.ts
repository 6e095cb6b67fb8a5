import { randomUUID } from 'node:crypto';
import { ApplianceWorker } from '@hsm-broker/fleet';
import type { ApplianceConfig, OfficerSession } from '@hsm-broker/fleet';

/** Label of the backup key (a trusted AES wrapping key) on the backup HSM and on fleet appliances. */
export const backupKeyLabel = 'hsmb-backup-key';
/** Label of the backup HSM's HMAC key that seals backup files. */
export const backupMacLabel = 'hsmb-backup-mac';

/** A user session on the backup HSM. */
interface UserSession {
  call: ApplianceWorker['call'];
}

/**
 * The backup HSM: a token outside the fleet (as a Luna Backup HSM is) that
 * owns the backup key. Fleet appliances receive the backup key from it by
 * trusted enrollment; backup files hold key versions wrapped under it and
 * are sealed by an HMAC computed inside it. Losing every fleet token loses
 * nothing as long as the backup HSM and a backup file survive.
 */
export class BackupHsm {
  readonly #config: ApplianceConfig;
  readonly #timeoutMs: number;

  constructor(config: ApplianceConfig, timeoutMs: number) {
    this.#config = config;
    this.#timeoutMs = timeoutMs;
  }

  async #with<T>(role: 'so' | 'user', body: (worker: ApplianceWorker) => Promise<T>): Promise<T> {
    const pin = role === 'so' ? this.#config.soPin : this.#config.userPin;
    const worker = await ApplianceWorker.start({
      applianceId: this.#config.id,
      modulePath: this.#config.modulePath,
      selector: this.#config.selector,
      role,
      ...(pin === undefined ? {} : { pin }),
      env: this.#config.env,
      startTimeoutMs: this.#timeoutMs,
    });
    try {
      return await body(worker);
    } finally {
      await worker.stop();
    }
  }

  /** Runs `body` with a security-officer session on the backup HSM. */
  withOfficer<T>(body: (session: OfficerSession) => Promise<T>): Promise<T> {
    return this.#with('so', (worker) => body({ call: (op, args) => worker.call(op, args, this.#timeoutMs) }));
  }

  #withUser<T>(body: (session: UserSession) => Promise<T>): Promise<T> {
    return this.#with('user', (worker) => body({ call: (op, args, timeout) => worker.call(op, args, timeout) }));
  }

  /** Creates the backup key and the sealing key on first use; returns the backup key's id. */
  async ensureKeys(): Promise<string> {
    const keyId = await this.withOfficer(async (so) => {
      const existing = await so.call('kekId', { label: backupKeyLabel });
      if (existing !== null) return existing;
      const id = randomUUID();
      await so.call('generateKek', { label: backupKeyLabel, kekId: id });
      return id;
    });
    await this.#withUser(async (user) => {
      if (!(await user.call('hasKey', { label: backupMacLabel }, this.#timeoutMs))) {
        await user.call('generateKey', { spec: 'HMAC_256', label: backupMacLabel }, this.#timeoutMs);
      }
    });
    return keyId;
  }

  /** The backup key's id, or null when the backup HSM has none. */
  backupKeyId(): Promise<string | null> {
    return this.withOfficer((so) => so.call('kekId', { label: backupKeyLabel }));
  }

  /** HMAC-SHA-256 of `payload` with the sealing key. */
  seal(payload: Buffer): Promise<Buffer> {
    return this.#withUser((user) => user.call('generateMac', { label: backupMacLabel, hash: 'sha256', message: payload }, this.#timeoutMs));
  }

  /** Whether `mac` seals `payload`. */
  checkSeal(payload: Buffer, mac: Buffer): Promise<boolean> {
    return this.#withUser(async (user) => {
      if (!(await user.call('hasKey', { label: backupMacLabel }, this.#timeoutMs))) return false;
      return user.call('verifyMac', { label: backupMacLabel, hash: 'sha256', message: payload, mac }, this.#timeoutMs);
    });
  }
}
