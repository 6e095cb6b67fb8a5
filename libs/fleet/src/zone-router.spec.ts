import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseAppliance } from './zone-router.js';
import type { RouteCandidate } from './zone-router.js';

function candidate(id: string, zone: string, overrides: Partial<RouteCandidate> = {}): RouteCandidate {
  return { id, zone, inFlight: 0, capacity: 2, latencyEwmaMs: 1, weight: 1, healthy: true, inRotation: true, ...overrides };
}

const order = ['az-a', 'az-b', 'az-c'];
const none = new Set<string>();

function counts(pool: RouteCandidate[], runs = 2000, options: { exclude?: Set<string>; avoidZones?: Set<string> } = {}): Map<string, number> {
  const seen = new Map<string, number>();
  for (let i = 0; i < runs; i++) {
    const choice = chooseAppliance(pool, { zoneOrder: order, exclude: options.exclude ?? none, avoidZones: options.avoidZones ?? none });
    if (choice) seen.set(choice.appliance.id, (seen.get(choice.appliance.id) ?? 0) + 1);
  }
  return seen;
}

describe('chooseAppliance', () => {
  it('keeps traffic in the local zone while it has spare sessions', () => {
    const seen = counts([candidate('a1', 'az-a'), candidate('b1', 'az-b'), candidate('c1', 'az-c')]);
    assert.deepEqual([...seen], [['a1', 2000]]);
  });

  it('spills to the next zone in order when the local zone is saturated', () => {
    const seen = counts([candidate('a1', 'az-a', { inFlight: 2 }), candidate('c1', 'az-c'), candidate('b1', 'az-b')]);
    assert.deepEqual([...seen], [['b1', 2000]]);
  });

  it('skips zones without a closed breaker and panics only when none is closed', () => {
    assert.deepEqual([...counts([candidate('a1', 'az-a', { healthy: false }), candidate('b1', 'az-b')])], [['b1', 2000]]);
    const choice = chooseAppliance([candidate('a1', 'az-a', { healthy: false, inFlight: 3 }), candidate('b1', 'az-b', { healthy: false })], {
      zoneOrder: order,
      exclude: none,
      avoidZones: none,
    });
    assert.equal(choice?.appliance.id, 'b1');
    assert.equal(choice?.panic, true);
  });

  it('panics only onto appliances that still answer probes; with none, there is no choice (fast UNAVAILABLE)', () => {
    const options = { zoneOrder: order, exclude: none, avoidZones: none };
    const answering = chooseAppliance([candidate('a1', 'az-a', { healthy: false, answersProbes: false }), candidate('b1', 'az-b', { healthy: false, inFlight: 5 })], options);
    assert.equal(answering?.appliance.id, 'b1');
    assert.equal(answering?.panic, true);
    assert.equal(chooseAppliance([candidate('a1', 'az-a', { healthy: false, answersProbes: false }), candidate('b1', 'az-b', { healthy: false, answersProbes: false })], options), undefined);
    // A closed breaker wins whatever the last probe said.
    assert.equal(chooseAppliance([candidate('a1', 'az-a', { answersProbes: false })], options)?.panic, false);
  });

  it('never routes to drained, fenced or excluded appliances', () => {
    assert.equal(chooseAppliance([candidate('a1', 'az-a', { inRotation: false })], { zoneOrder: order, exclude: none, avoidZones: none }), undefined);
    assert.deepEqual([...counts([candidate('a1', 'az-a'), candidate('a2', 'az-a')], 500, { exclude: new Set(['a1']) })], [['a2', 500]]);
  });

  it('sends a retry to another zone when one has capacity', () => {
    const seen = counts([candidate('a1', 'az-a'), candidate('a2', 'az-a'), candidate('c1', 'az-c')], 500, { exclude: new Set(['a1']), avoidZones: new Set(['az-a']) });
    assert.deepEqual([...seen], [['c1', 500]]);
  });

  it('gives a slow appliance less work within a zone (latency-weighted power of two choices)', () => {
    const seen = counts([candidate('a1', 'az-a', { latencyEwmaMs: 1 }), candidate('a2', 'az-a', { latencyEwmaMs: 20 }), candidate('a3', 'az-a', { latencyEwmaMs: 1 })], 3000);
    assert.ok((seen.get('a2') ?? 0) < 0.2 * 3000, `slow appliance chosen ${String(seen.get('a2'))} times`);
    assert.ok((seen.get('a1') ?? 0) > 1000 && (seen.get('a3') ?? 0) > 1000);
  });

  it('ramps a recovering local zone up gradually instead of sending it everything at once', () => {
    const seen = counts([candidate('a1', 'az-a', { weight: 0.25 }), candidate('b1', 'az-b')], 4000);
    const share = (seen.get('a1') ?? 0) / 4000;
    assert.ok(share > 0.15 && share < 0.35, `recovering zone got ${String(share)} of the traffic`);
  });

  it('gives a slow-starting appliance a reduced share', () => {
    const seen = counts([candidate('a1', 'az-a'), candidate('a2', 'az-a', { weight: 0.1 })], 3000);
    assert.ok((seen.get('a2') ?? 0) < 0.1 * 3000, `recovering appliance chosen ${String(seen.get('a2'))} times`);
  });
});
