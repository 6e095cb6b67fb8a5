import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryBudget } from './retry-budget.js';

describe('RetryBudget', () => {
  it('allows retries up to the ratio of recent requests, plus the minimum', () => {
    let now = 0;
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowMs: 10_000 }, () => now);
    for (let i = 0; i < 100; i++) budget.recordRequest();
    let allowed = 0;
    while (budget.tryRetry()) allowed++;
    assert.equal(allowed, 20);
    // As the window moves on, old requests stop paying for retries.
    now += 20_000;
    allowed = 0;
    while (budget.tryRetry()) allowed++;
    assert.equal(allowed, 10, 'only the minimum (1/s over 10 s) remains');
  });
});
