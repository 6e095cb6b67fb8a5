import CircuitBreaker from 'opossum';
import { BrokerError, Code } from '@hsm-broker/errors';

/** When a breaker opens and how long it stays open. */
export interface BreakerPolicy {
  /** Open after this many appliance faults in a row (works with 2–3 appliances, where percentages never reach volume). */
  consecutiveFailures: number;
  /** Or when this share of calls in the rolling window failed… */
  errorThresholdPercentage: number;
  /** …and the window saw at least this many calls. */
  volumeThreshold: number;
  /** Rolling window length. */
  rollingWindowMs: number;
  /** First open period; doubled each time a half-open trial fails. */
  openMs: number;
  /** Longest open period. */
  maxOpenMs: number;
}

/** Breaker states as reported. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * One appliance's circuit breaker (opossum underneath). Only appliance
 * faults count against it: caller errors pass through as successes, since
 * they prove the appliance answered. Besides opossum's error percentage it
 * opens on consecutive faults, and its open period backs off exponentially
 * while the appliance keeps failing its half-open trials.
 */
export class ApplianceBreaker {
  readonly #breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  #consecutive = 0;
  readonly #threshold: number;
  #ejections = 0;
  readonly #listeners: ((state: BreakerState) => void)[] = [];

  constructor(name: string, policy: BreakerPolicy) {
    this.#threshold = policy.consecutiveFailures;
    this.#breaker = new CircuitBreaker((action: () => Promise<unknown>) => action(), {
      name,
      timeout: false,
      resetTimeout: policy.openMs,
      errorThresholdPercentage: policy.errorThresholdPercentage,
      volumeThreshold: policy.volumeThreshold,
      rollingCountTimeout: policy.rollingWindowMs,
      rollingCountBuckets: 10,
      // Nothing reads opossum's latency percentiles or its per-bucket snapshots;
      // collecting them cost an array entry per call and a sort of the whole
      // window each time a failure made opossum read its stats.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      errorFilter: (error: unknown) => !this.#countsAsFault(error),
    });
    this.#breaker.on('failure', () => {
      this.#consecutive++;
      if (this.#consecutive >= policy.consecutiveFailures && this.#breaker.closed) this.#breaker.open();
    });
    this.#breaker.on('success', () => {
      this.#consecutive = 0;
    });
    this.#breaker.on('open', () => {
      this.#ejections++;
      this.#emit('open');
    });
    this.#breaker.on('halfOpen', () => {
      // Set now, read when the trial fails and the breaker re-opens.
      this.#options.resetTimeout = Math.min(this.#options.resetTimeout * 2, policy.maxOpenMs);
      this.#emit('half-open');
    });
    this.#breaker.on('close', () => {
      this.#consecutive = 0;
      this.#options.resetTimeout = policy.openMs;
      this.#emit('closed');
    });
  }

  /**
   * Whether an error counts against the appliance. Appliance faults always
   * do; caller errors never (the appliance answered). A call that ran out of
   * time or found no free session proves nothing while the breaker is
   * closed, but it is no answer either: as a half-open trial it fails, so a
   * trial stuck behind a worker that is still reconnecting cannot close the
   * breaker and pull every caller onto an appliance that does not serve.
   */
  #countsAsFault(error: unknown): boolean {
    if (!(error instanceof BrokerError)) return this.#breaker.halfOpen;
    if (error.failureClass === 'appliance') return true;
    return this.#breaker.halfOpen && (error.failureClass === 'overload' || error.failureClass === 'deadline');
  }

  /**
   * opossum reads `options.resetTimeout` each time it opens; its type
   * definitions do not expose `options`, hence this narrow view.
   */
  get #options(): { resetTimeout: number } {
    return (this.#breaker as unknown as { options: { resetTimeout: number } }).options;
  }

  #emit(state: BreakerState): void {
    for (const listener of this.#listeners) listener(state);
  }

  /** Called on every state change. */
  onStateChange(listener: (state: BreakerState) => void): void {
    this.#listeners.push(listener);
  }

  get state(): BreakerState {
    if (this.#breaker.closed) return 'closed';
    return this.#breaker.halfOpen ? 'half-open' : 'open';
  }

  /** How many times the breaker opened. */
  get ejections(): number {
    return this.#ejections;
  }

  /** Appliance faults in a row. */
  get consecutiveFailures(): number {
    return this.#consecutive;
  }

  /** The current open period. */
  get openMs(): number {
    return this.#options.resetTimeout;
  }

  /** Runs `action` through the breaker. While it is open, rejects at once with UNAVAILABLE. */
  async fire<T>(action: () => Promise<T>): Promise<T> {
    try {
      return (await this.#breaker.fire(action)) as T;
    } catch (error: unknown) {
      if (error instanceof BrokerError) throw error;
      if ((error as { code?: unknown }).code === 'EOPENBREAKER') {
        throw new BrokerError(Code.UNAVAILABLE, `circuit breaker ${this.#breaker.name} is open`, {
          reason: 'BREAKER_OPEN',
          failureClass: 'appliance',
        });
      }
      throw BrokerError.from(error);
    }
  }

  /** Records the outcome of a call made without the breaker (panic mode), so health still learns from it. */
  record(error: unknown): void {
    if (error instanceof BrokerError && error.failureClass === 'appliance') {
      this.#consecutive++;
    } else {
      this.#consecutive = 0;
    }
  }

  /**
   * Counts an appliance fault seen outside a call (a worker that crashed
   * between calls), opening the breaker at the consecutive-fault threshold.
   */
  noteFault(): void {
    this.#consecutive++;
    if (this.#consecutive >= this.#threshold && this.#breaker.closed) this.#breaker.open();
  }

  /**
   * Opens the breaker now: the appliance lost every worker. It returns only
   * through a successful half-open probe, never by a caller's request.
   */
  forceOpen(): void {
    if (this.#breaker.closed) this.#breaker.open();
  }

  /**
   * Runs a probe now, outside the breaker's schedule, and closes the breaker
   * when it succeeds (an operator cleared the fault; no need to wait out a
   * backed-off open period).
   */
  async retryNow(probe: () => Promise<unknown>): Promise<boolean> {
    if (this.#breaker.closed) return true;
    try {
      await probe();
    } catch {
      return false;
    }
    this.#breaker.close();
    return true;
  }

  /** Stops its timers. */
  shutdown(): void {
    this.#breaker.shutdown();
  }
}
