import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { QuotaRule } from './access-policy.js';
import { operationClassOf } from './method-catalog.js';
import { TokenBucket } from './token-bucket.js';

/** Most identities whose buckets are kept; beyond it the oldest are forgotten (and start full again). */
const maxTrackedBuckets = 10_000;

/**
 * Per-identity request quotas, like KMS's per-account request quotas: each
 * identity gets its own token bucket per operation class, sized by the first
 * `quotas:` rule whose glob matches it. A refusal is decided here, before any
 * worker is involved, so one identity's exhausted quota costs the others
 * nothing.
 */
export class RequestQuotas {
  #rules: readonly QuotaRule[] = [];
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #clock: (() => number) | undefined;

  constructor(clock?: () => number) {
    this.#clock = clock;
  }

  /** Installs the rules of a (re)loaded policy. */
  setRules(rules: readonly QuotaRule[]): void {
    this.#rules = rules;
  }

  /** Takes a token for `method`, or throws RESOURCE_EXHAUSTED with the wait in the retry-after trailer. */
  charge(identity: string, method: string): void {
    const operationClass = operationClassOf(method);
    if (!operationClass) return;
    const rule = this.#rules.find((candidate) => candidate.matchesIdentity(identity));
    const limit = rule?.limits[operationClass];
    if (!limit) return;
    const name = `${operationClass}\u0000${identity}`;
    let bucket = this.#buckets.get(name);
    if (!bucket?.isFor(limit)) {
      bucket = new TokenBucket(limit, this.#clock);
      if (this.#buckets.size >= maxTrackedBuckets) {
        const oldest = this.#buckets.keys().next();
        if (!oldest.done) this.#buckets.delete(oldest.value);
      }
      this.#buckets.set(name, bucket);
    }
    const waitMs = bucket.take();
    if (waitMs > 0) {
      throw new BrokerError(Code.RESOURCE_EXHAUSTED, `request quota exhausted for ${quoteInput(identity)}: ${operationClass} calls are limited to ${String(limit.ratePerSecond)}/s (burst ${String(limit.burst)}); retry after ${String(waitMs)} ms`, {
        reason: 'QUOTA_EXHAUSTED',
        retryable: true,
        failureClass: 'caller',
        details: { retryAfterMs: waitMs, operationClass },
      });
    }
  }
}
