/** How many retries the fleet may add on top of first attempts. */
export interface RetryBudgetPolicy {
  /** Retries allowed as a share of requests in the window, e.g. 0.2. */
  ratio: number;
  /** Retries always allowed per second, so that a quiet broker can still fail over. */
  minPerSecond: number;
  windowMs: number;
}

/**
 * A retry budget (as in Finagle and Envoy): retries may not exceed a share
 * of recent requests, so an outage cannot be amplified into a retry storm.
 */
export class RetryBudget {
  readonly #policy: RetryBudgetPolicy;
  readonly #bucketMs: number;
  readonly #requests: number[];
  readonly #retries: number[];
  #bucketStart = 0;
  #index = 0;
  readonly #now: () => number;

  constructor(policy: RetryBudgetPolicy, now: () => number = Date.now) {
    this.#policy = policy;
    this.#bucketMs = Math.max(100, Math.floor(policy.windowMs / 10));
    this.#requests = new Array<number>(10).fill(0);
    this.#retries = new Array<number>(10).fill(0);
    this.#now = now;
    this.#bucketStart = now();
  }

  #advance(): void {
    const now = this.#now();
    if (now - this.#bucketStart >= this.#policy.windowMs + this.#bucketMs) {
      // Idle for longer than the window: nothing recent remains.
      this.#requests.fill(0);
      this.#retries.fill(0);
      this.#bucketStart = now;
      return;
    }
    while (now - this.#bucketStart >= this.#bucketMs) {
      this.#bucketStart += this.#bucketMs;
      this.#index = (this.#index + 1) % this.#requests.length;
      this.#requests[this.#index] = 0;
      this.#retries[this.#index] = 0;
    }
  }

  /** Counts a first attempt. */
  recordRequest(): void {
    this.#advance();
    this.#requests[this.#index] = (this.#requests[this.#index] ?? 0) + 1;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    this.#advance();
    const requests = this.#requests.reduce((a, b) => a + b, 0);
    const retries = this.#retries.reduce((a, b) => a + b, 0);
    const allowed = Math.max(this.#policy.ratio * requests, (this.#policy.minPerSecond * this.#policy.windowMs) / 1000);
    if (retries >= allowed) return false;
    this.#retries[this.#index] = (this.#retries[this.#index] ?? 0) + 1;
    return true;
  }
}
