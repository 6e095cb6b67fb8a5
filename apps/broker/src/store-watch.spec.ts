import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KeyRecord, KeyStoreReads } from '@hsm-broker/keys';
import { StoreWatch } from './store-watch.js';

/** Reads that answer at once until `stall()`, then never again until `resume()`; or fail with `fail(message)`. */
function stallingReads() {
  let mode: 'answer' | 'stall' | { fail: string } = 'answer';
  const waiting: (() => void)[] = [];
  const keys = [{ keyId: 'k1', keyState: 'ENABLED', versions: [] } as unknown as KeyRecord];
  const answer = <T>(value: T): Promise<T> => {
    if (mode === 'answer') return Promise.resolve(value);
    if (mode === 'stall') return new Promise<T>((resolve) => waiting.push(() => resolve(value)));
    return Promise.reject(new Error(mode.fail));
  };
  const reads: KeyStoreReads = {
    allKeys: () => answer(keys),
    replicaCounts: () => answer(new Map([['hsm-a1', 1]])),
    getMeta: () => answer(undefined),
  };
  return {
    reads,
    stall: () => (mode = 'stall'),
    fail: (message: string) => (mode = { fail: message }),
    resume: () => {
      mode = 'answer';
      for (const release of waiting.splice(0)) release();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('StoreWatch', () => {
  it('answers within its bound when the store stalls, not ready, with how long the store has been silent', async () => {
    const store = stallingReads();
    const watch = new StoreWatch(store.reads, { freshMs: 20, waitMs: 100 });
    const fresh = await watch.check();
    assert.equal(fresh.ok, true);
    // The answer is fresh: a millisecond may tick between the read and the check.
    assert.ok((fresh.ageMs ?? Infinity) <= 5, `age ${String(fresh.ageMs)}`);
    store.stall();
    await sleep(150);
    const started = Date.now();
    const stalled = await watch.check();
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 400, `check took ${String(tookMs)} ms`);
    assert.equal(stalled.ok, false);
    assert.match(stalled.error ?? '', /^key store has not answered for \d+ ms$/);
    assert.ok((stalled.ageMs ?? 0) >= 150, `age ${String(stalled.ageMs)}`);
    store.resume();
    assert.equal((await watch.check()).ok, true);
  });

  it('serves the last keys and replica counts, with their age, while the store stalls', async () => {
    const store = stallingReads();
    const watch = new StoreWatch(store.reads, { freshMs: 20, waitMs: 100 });
    const first = await watch.tally();
    assert.equal(first?.keys.length, 1);
    store.stall();
    await sleep(50);
    const started = Date.now();
    const last = await watch.tally();
    assert.ok(Date.now() - started < 400);
    assert.equal(last?.at, first?.at);
    assert.equal(last?.replicaCounts.get('hsm-a1'), 1);
    assert.ok((watch.ageMs ?? 0) >= 50);
    store.resume();
  });

  it('does not pile reads up on a stalled store: one read runs, every caller shares it', async () => {
    const store = stallingReads();
    let asked = 0;
    const counting: KeyStoreReads = { ...store.reads, getMeta: (name) => (asked++, store.reads.getMeta(name)) };
    const watch = new StoreWatch(counting, { freshMs: 0, waitMs: 20 });
    store.stall();
    await Promise.all([watch.check(), watch.check(), watch.check()]);
    for (let i = 0; i < 5; i++) watch.current();
    assert.equal(asked, 1);
    store.resume();
  });

  it('reports a failing store as not ready with its error', async () => {
    const store = stallingReads();
    const watch = new StoreWatch(store.reads, { freshMs: 0, waitMs: 100 });
    store.fail('key store unavailable: no answer in time');
    assert.deepEqual(await watch.check(), { ok: false, ageMs: undefined, error: 'key store unavailable: no answer in time' });
    assert.equal(await watch.tally(), undefined);
  });
});
