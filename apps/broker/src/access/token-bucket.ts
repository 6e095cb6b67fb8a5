import type { BucketLimit } from './access-policy.js';

/**
 * A token bucket: up to `burst` calls at once, refilled continuously at
 * `ratePerSecond`. Refill is computed on each take from the elapsed time,
 * so an idle bucket costs nothing.
 */
export class TokenBucket {
  readonly #limit: BucketLimit;
  readonly #clock: () => number;
  #tokens: number;
  #updatedAt: number;

  constructor(limit: BucketLimit, clock: () => number = () => performance.now()) {
    this.#limit = limit;
    this.#clock = clock;
    this.#tokens = limit.burst;
    this.#updatedAt = clock();
  }

  /** Takes one token; returns 0 when taken, else the milliseconds until one will be there. */
  take(): number {
    const now = this.#clock();
    this.#tokens = Math.min(this.#limit.burst, this.#tokens + ((now - this.#updatedAt) / 1000) * this.#limit.ratePerSecond);
    this.#updatedAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) / this.#limit.ratePerSecond) * 1000);
  }

  /** Whether this bucket was made for `limit` (a reloaded policy keeps unchanged buckets and their state). */
  isFor(limit: BucketLimit): boolean {
    return this.#limit.ratePerSecond === limit.ratePerSecond && this.#limit.burst === limit.burst;
  }
}
