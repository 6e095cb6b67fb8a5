import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApplianceCallSample } from '@hsm-broker/fleet';
import { FleetActivity, bucketMs } from './fleet-activity.js';

function sample(applianceId: string, latencyMs: number, background = false): ApplianceCallSample {
  return { applianceId, zone: 'az-a', op: 'sign', outcome: 'ok', background, latencyMs, queueWaitMs: 0 };
}

describe('FleetActivity', () => {
  it('counts caller calls per bucket and ignores background calls', () => {
    let now = 10 * bucketMs;
    const activity = new FleetActivity(() => now);
    for (let i = 0; i < 10; i++) activity.record(sample('hsm-a1', 5));
    activity.record(sample('hsm-a1', 5, true));
    assert.equal(activity.traffic('hsm-a1').rps, 0, 'the bucket still filling is not shown');
    now += bucketMs;
    const traffic = activity.traffic('hsm-a1');
    assert.equal(traffic.rps, 10 / (bucketMs / 1000));
    assert.equal(traffic.series.length, 60);
    now += 61 * bucketMs;
    assert.equal(activity.traffic('hsm-a1').series.reduce((a, b) => a + b, 0), 0, 'old buckets fall off');
  });

  it('reports the 99th percentile of the last minute', () => {
    let now = 1_000_000;
    const activity = new FleetActivity(() => now);
    for (let i = 1; i <= 100; i++) activity.record(sample('hsm-a1', i));
    assert.equal(activity.traffic('hsm-a1').p99Ms, 99);
    now += 61_000;
    assert.equal(activity.traffic('hsm-a1').p99Ms, 0);
  });

  it('folds a breaker that keeps failing its trials into two counted events', () => {
    const activity = new FleetActivity(() => 0);
    activity.note('fault-injected', 'hsm-a1', 'ERROR fault injected on hsm-a1');
    for (let i = 0; i < 4; i++) {
      activity.note('ejected', 'hsm-a1', 'hsm-a1 ejected');
      activity.note('half-open', 'hsm-a1', 'hsm-a1 on trial');
    }
    const events = activity.events();
    assert.deepEqual(events.map((event) => [event.kind, event.count]), [['half-open', 4], ['ejected', 4], ['fault-injected', 1]]);
  });
});
