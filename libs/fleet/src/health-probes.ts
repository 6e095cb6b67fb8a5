import { BrokerError, Code } from '@hsm-broker/errors';
import type { Appliance } from './appliance.js';
import type { WorkerResult } from './worker-operations.js';

/**
 * Health probes: a cheap real operation (random bytes from the token) per
 * appliance, through its breaker, so the half-open trial after an outage is
 * a probe rather than a caller's request. Remembers which appliances failed
 * their last contact, a probe or a caller's call: panic routing skips them.
 * Calls count as well as probes because probes stop while a breaker is open,
 * and an appliance whose breaker opened on callers' faults has often not
 * failed a probe yet.
 */
export class HealthProbes {
  readonly #timeoutMs: number;
  readonly #onTokenReplaced: (applianceId: string) => void;
  readonly #probing = new Set<string>();
  readonly #failed = new Set<string>();

  constructor(timeoutMs: number, onTokenReplaced: (applianceId: string) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onTokenReplaced = onTokenReplaced;
  }

  /** Whether the appliance answered its last contact (or has not been contacted). */
  answersProbes(applianceId: string): boolean {
    return !this.#failed.has(applianceId);
  }

  /** A caller's call was answered by the appliance. */
  noteAnswered(applianceId: string): void {
    this.#failed.delete(applianceId);
  }

  /** A caller's call ended in an appliance fault. */
  noteFault(applianceId: string): void {
    this.#failed.add(applianceId);
  }

  #call(appliance: Appliance): Promise<WorkerResult<'probe'>> {
    const deadline = Date.now() + this.#timeoutMs;
    return appliance.call('probe', {}, { deadline, background: true }).catch((error: unknown) => {
      const failure = BrokerError.from(error);
      if (failure.failureClass === 'deadline') {
        throw new BrokerError(Code.UNAVAILABLE, `appliance ${appliance.id} did not answer a probe within ${String(this.#timeoutMs)} ms`, {
          reason: 'PROBE_TIMEOUT',
          failureClass: 'appliance',
        });
      }
      throw failure;
    });
  }

  /** Probes one appliance through its breaker unless it is open, stopped or already being probed. */
  probe(appliance: Appliance): void {
    if (!appliance.available || appliance.breaker.state === 'open' || this.#probing.has(appliance.id)) return;
    this.#probing.add(appliance.id);
    appliance.breaker
      .fire(() => this.#call(appliance))
      .then((result) => {
        this.#failed.delete(appliance.id);
        if (appliance.noteTokenSerial(result.serial)) this.#onTokenReplaced(appliance.id);
      })
      .catch(() => {
        this.#failed.add(appliance.id);
      })
      .finally(() => this.#probing.delete(appliance.id));
  }

  /** Probes outside the breaker's schedule until it closes (an operator cleared the cause), for about five seconds. */
  async recoverSoon(appliance: Appliance): Promise<void> {
    for (let attempt = 0; attempt < 50 && appliance.breaker.state !== 'closed'; attempt++) {
      if (appliance.available && (await appliance.breaker.retryNow(() => this.#call(appliance)))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
