import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FaultAction } from '../faults/fault-action.js';
import { drawFaultSchedule, scheduleFaultKinds } from './fault-schedule.js';

const topology = {
  appliances: ['a', 'b', 'c'].flatMap((zone) => [1, 2].map((n) => ({ id: `hsm-${zone}${String(n)}`, zone: `az-${zone}` }))),
};
const base = { durationMs: 300_000, topology, kinds: scheduleFaultKinds };

function zoneOf(action: FaultAction): string | undefined {
  if ('zone' in action) return action.zone;
  if ('appliance' in action) return topology.appliances.find((appliance) => appliance.id === action.appliance)?.zone;
  return undefined;
}

/** Replays a schedule and returns the largest number of zones with a fault in force at once. */
function mostZonesBroken(schedule: ReturnType<typeof drawFaultSchedule>): number {
  const broken = new Map<string, string>();
  let most = 0;
  for (const { action } of schedule) {
    const id = 'appliance' in action ? action.appliance : 'zone' in action ? `zone:${action.zone}` : '';
    const undo = ['start', 'unpause', 'heal'].includes(action.kind) || (action.kind === 'slow' && action.ms === 0);
    if (undo) {
      broken.delete(id);
      broken.delete(`zone:${zoneOf(action) ?? ''}`);
    } else if (action.kind !== 'zeroize') {
      broken.set(id, zoneOf(action) ?? '');
    }
    most = Math.max(most, new Set(broken.values()).size);
  }
  return most;
}

describe('fault schedule', () => {
  it('is the same for the same seed', () => {
    assert.deepEqual(drawFaultSchedule({ ...base, seed: 42 }), drawFaultSchedule({ ...base, seed: 42 }));
  });

  it('differs between seeds', () => {
    assert.notDeepEqual(drawFaultSchedule({ ...base, seed: 1 }), drawFaultSchedule({ ...base, seed: 2 }));
  });

  it('draws every kind it is given and undoes every fault before the quiet end', () => {
    const schedule = drawFaultSchedule({ ...base, seed: 7 });
    const kinds = new Set(schedule.map((step) => step.action.kind));
    for (const kind of scheduleFaultKinds) assert.ok(kinds.has(kind), `${kind} drawn`);
    assert.ok(schedule.every((step) => step.atMs >= 3000 && step.atMs <= 297_000));
    assert.ok(mostZonesBroken(schedule) >= 1);
    // Everything broken is brought back: replaying leaves nothing in force.
    const open = new Set<string>();
    for (const { action } of schedule) {
      if ('appliance' in action) {
        const undo = ['start', 'unpause', 'heal'].includes(action.kind) || (action.kind === 'slow' && action.ms === 0);
        if (undo) open.delete(action.appliance);
        else if (action.kind !== 'zeroize') open.add(action.appliance);
      } else if ('zone' in action) {
        for (const appliance of topology.appliances.filter((candidate) => candidate.zone === action.zone)) open.add(appliance.id);
      }
    }
    assert.deepEqual([...open], []);
  });

  it('never has faults in two zones at once unless asked', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      assert.equal(mostZonesBroken(drawFaultSchedule({ ...base, seed })), 1, `seed ${String(seed)}`);
    }
    const spread = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => mostZonesBroken(drawFaultSchedule({ ...base, seed, multipleZones: true })));
    assert.ok(Math.max(...spread) > 1, 'multipleZones lets faults overlap across zones');
  });

  it('draws only the kinds it is given', () => {
    const schedule = drawFaultSchedule({ ...base, seed: 3, kinds: ['pause'] });
    assert.ok(schedule.length > 0);
    assert.deepEqual([...new Set(schedule.map((step) => step.action.kind))].sort(), ['pause', 'unpause']);
  });
});
