import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplianceState } from '@hsm-broker/client';
import type { ApplianceStatus } from '@hsm-broker/client';
import { failuresOnlyWithin, failuresUntilReconnected, fastRefusalOnceKnown } from './fleet-scenario.js';
import type { FleetHistory, ScenarioTimes } from './fleet-scenario.js';
import type { FleetSample } from './fleet-sampler.js';
import type { LoadCall } from './mixed-load.js';

const times: ScenarioTimes = { faultAt: 1000, faultDoneAt: 5000, repairAt: 5000, repairedAt: 6000 };
const call = (loop: string, at: number, ms: number, code = 'OK'): LoadCall => ({ op: 'Encrypt', key: 'k', ok: code === 'OK', code, ms, at, loop });

test('a broker restart: UNAVAILABLE is acceptable until that loop has succeeded again, nothing else is', () => {
  const judge = failuresUntilReconnected('UNAVAILABLE');
  const calls = [call('0/0', 5200, 10), call('0/1', 5100, 10, 'UNAVAILABLE')];
  assert.equal(judge(call('0/0', 3000, 1, 'UNAVAILABLE'), times, calls), undefined, 'while the broker was away');
  assert.equal(judge(call('0/0', 5100, 1, 'UNAVAILABLE'), times, calls), undefined, 'after health, before this loop reconnected');
  assert.match(judge(call('0/0', 5300, 1, 'UNAVAILABLE'), times, calls) ?? '', /after its connection was back/);
  assert.equal(judge(call('0/1', 5300, 1, 'UNAVAILABLE'), times, calls), undefined, 'another loop that has not reconnected yet');
  assert.match(judge(call('0/0', 3000, 1, 'DEADLINE_EXCEEDED'), times, calls) ?? '', /only UNAVAILABLE/);
  assert.match(judge(call('0/0', 100, 50, 'UNAVAILABLE'), times, calls) ?? '', /before the restart/);
});

test('a fault window: only the given code, only for calls overlapping the window', () => {
  const judge = failuresOnlyWithin('UNAVAILABLE', (t) => t.faultAt, (t) => t.repairedAt);
  assert.equal(judge(call('0/0', 900, 200, 'UNAVAILABLE'), times), undefined);
  assert.match(judge(call('0/0', 6100, 5, 'UNAVAILABLE'), times) ?? '', /outside the fault/);
  assert.match(judge(call('0/0', 500, 100, 'UNAVAILABLE'), times) ?? '', /outside the fault/);
  assert.match(judge(call('0/0', 2000, 100, 'DEADLINE_EXCEEDED'), times) ?? '', /only UNAVAILABLE/);
});

test('a fleet down altogether: slow failures only until the broker knows, none once it is back', () => {
  const calls = [call('0/0', 1500, 600, 'DEADLINE_EXCEEDED'), call('0/1', 2500, 1, 'UNAVAILABLE')];
  // The broker's own status: every appliance out of rotation from 2800 on.
  const status = (at: number, state: ApplianceState): FleetSample => ({ at, appliances: new Map([['hsm-a1', { state } as ApplianceStatus], ['hsm-b1', { state: ApplianceState.OPEN } as ApplianceStatus]]) });
  const samples = [status(2000, ApplianceState.HEALTHY), status(2800, ApplianceState.DOWN)];
  const history: FleetHistory = { firstAfter: (from, test) => samples.find((sample) => sample.at > from && test(sample)) };
  const judge = (judged: LoadCall): string | undefined => fastRefusalOnceKnown(judged, times, calls, history);
  assert.equal(judge(call('0/0', 1500, 2000, 'DEADLINE_EXCEEDED')), undefined, 'on its way when the fleet vanished');
  assert.equal(judge(call('0/0', 2600, 2000, 'DEADLINE_EXCEEDED')), undefined, 'after the first refusal, before the broker had every appliance out');
  assert.match(judge(call('0/0', 3000, 2000, 'DEADLINE_EXCEEDED')) ?? '', /should refuse fast/);
  assert.equal(judge(call('0/0', 3000, 1, 'UNAVAILABLE')), undefined);
  assert.match(judge(call('0/0', 6500, 1, 'UNAVAILABLE')) ?? '', /while the fleet was up/);
  assert.equal(judge({ ...call('0/0', 3000, 2000, 'DEADLINE_EXCEEDED'), op: 'CreateKey' }), undefined);
  const noStatus: FleetHistory = { firstAfter: () => undefined };
  assert.match(fastRefusalOnceKnown(call('0/0', 2600, 2000, 'DEADLINE_EXCEEDED'), times, calls, noStatus) ?? '', /should refuse fast/, 'without status, the first refusal decides');
});
