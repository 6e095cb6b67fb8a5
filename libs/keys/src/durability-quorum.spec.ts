import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { checkQuorum, effectiveDurability } from './durability-quorum.js';

const zones: Record<string, string> = { a: 'z1', b: 'z1', c: 'z2', d: 'z3' };
const zoneOf = (id: string): string => zones[id] ?? '?';
const refused = (error: unknown): boolean => error instanceof BrokerError && error.reason === 'DURABILITY_QUORUM_NOT_MET' && error.retryable;

describe('durability quorum', () => {
  it('is met with enough appliances in enough zones', () => {
    assert.doesNotThrow(() => checkQuorum(['a', 'c'], zoneOf, { minAppliances: 2, minZones: 2 }, 'now'));
    assert.doesNotThrow(() => checkQuorum(['a', 'b', 'c', 'd'], zoneOf, { minAppliances: 3, minZones: 3 }, 'now'));
  });

  it('is not met by enough appliances all in one zone', () => {
    assert.throws(() => checkQuorum(['a', 'b'], zoneOf, { minAppliances: 2, minZones: 2 }, 'after replication'), (error: unknown) => refused(error) && /2 appliance\(s\) in 1 zone\(s\).*after replication|after replication.*2 appliance\(s\) in 1 zone\(s\)/.test((error as Error).message));
  });

  it('is not met by enough zones with too few appliances', () => {
    assert.throws(() => checkQuorum(['a', 'c'], zoneOf, { minAppliances: 3, minZones: 2 }, 'now'), refused);
    assert.throws(() => checkQuorum([], zoneOf, { minAppliances: 1, minZones: 1 }, 'now'), refused);
  });

  it('is lowered to what the configured fleet can ever satisfy, never raised', () => {
    const fleet = [
      { id: 'a', zone: 'z1', available: true },
      { id: 'b', zone: 'z1', available: false },
    ];
    assert.deepEqual(effectiveDurability({ minAppliances: 3, minZones: 2 }, fleet), { minAppliances: 2, minZones: 1 });
    assert.deepEqual(effectiveDurability({ minAppliances: 1, minZones: 1 }, fleet), { minAppliances: 1, minZones: 1 });
    assert.deepEqual(effectiveDurability({ minAppliances: 2, minZones: 2 }, []), { minAppliances: 0, minZones: 0 });
  });
});
