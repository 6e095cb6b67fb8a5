import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CallRecord, FaultRecord } from '../load/call-history.js';
import { analyseGameDay } from './gameday-analysis.js';
import type { FleetSample } from './fleet-sampler.js';
import { renderLatencyChart } from './latency-chart.js';
import { renderGameDayMarkdown } from './report-markdown.js';
import { validateScenario } from './scenario-file.js';

// A made-up game day: hsm-a1 takes half the traffic until it is killed at
// 10 s; from the poll at 10.6 s on it takes none; at 20 s it is started and
// is healthy again from the poll at 23 s.
const origin = 1_000_000;
const topology = { appliances: [{ id: 'hsm-a1', zone: 'az-a' }, { id: 'hsm-b1', zone: 'az-b' }] };
const samples: FleetSample[] = [];
let a1 = 0;
let b1 = 0;
for (let at = 0; at <= 30_000; at += 200) {
  const down = at >= 10_600 && at < 20_000;
  a1 += down ? 0 : 10;
  b1 += down ? 20 : 10;
  const healthy = at < 10_000 || at >= 23_000;
  samples.push({
    atMs: origin + at,
    answered: true,
    appliances: [
      { id: 'hsm-a1', zone: 'az-a', state: healthy ? 'HEALTHY' : 'OPEN', breaker: healthy ? 'CLOSED' : 'OPEN', requestsTotal: a1, failuresTotal: 0, keysMissing: healthy ? 0 : 3 },
      { id: 'hsm-b1', zone: 'az-b', state: 'HEALTHY', breaker: 'CLOSED', requestsTotal: b1, failuresTotal: 0, keysMissing: 0 },
    ],
  });
}
const calls: CallRecord[] = [];
for (let at = 0; at < 30_000; at += 100) {
  const failing = at >= 10_000 && at < 10_300;
  calls.push({
    type: 'call', seq: calls.length, process: 0, op: 'Encrypt', keyId: 'k', inputDigest: 'x',
    code: failing ? 'UNAVAILABLE' : 'OK', startMs: origin + at, endMs: origin + at + (failing ? 900 : 5), deadlineMs: 2000,
  });
}
const faults: FaultRecord[] = [
  { type: 'fault', startMs: origin + 10_000, endMs: origin + 10_001, action: { kind: 'kill', appliance: 'hsm-a1' }, description: 'kill hsm-a1' },
  { type: 'fault', startMs: origin + 20_000, endMs: origin + 20_001, action: { kind: 'start', appliance: 'hsm-a1' }, description: 'start hsm-a1' },
];
const scenario = validateScenario({
  name: 'made-up',
  duration: '30s',
  steps: [{ at: '10s', fault: 'kill', appliance: 'hsm-a1' }, { at: '20s', fault: 'start', appliance: 'hsm-a1' }],
});
const steps = scenario.steps.map((step) => ({ ...step, explanation: 'by hand' }));

describe('game-day report', () => {
  const analysis = analyseGameDay({ originMs: origin, durationMs: 30_000, calls, faults, steps, samples, topology });

  it('splits calls into phases and measures shift and repair from the fleet samples', () => {
    assert.deepEqual(analysis.phases.map((phase) => [phase.name, phase.calls, phase.errors]), [
      ['baseline', 100, {}],
      ['kill hsm-a1', 100, { UNAVAILABLE: 3 }],
      ['start hsm-a1', 100, {}],
    ]);
    const [baseline, killed, started] = analysis.phases;
    assert.equal(baseline?.p50Ms, 5);
    assert.equal(killed?.p99Ms, 900);
    // The poll at 11.4 s is the first whose last second (after the poll at 10.4 s) saw no attempt on hsm-a1.
    assert.equal(killed?.shiftMs, 1400);
    assert.ok(Math.abs((killed?.baselineShare ?? 0) - 0.5) < 0.01);
    assert.equal(started?.repairMs, 3000);
    assert.equal(started?.shiftMs, null);
  });

  it('writes a Markdown summary with a row per phase', () => {
    const markdown = renderGameDayMarkdown({ scenario, driver: 'injection', address: '127.0.0.1:1', startedAt: new Date(0), analysis, shed: 0 });
    assert.match(markdown, /^# Game day: made-up$/m);
    assert.match(markdown, /^\| kill hsm-a1 \| 10s \| 20s \| 100 \| UNAVAILABLE 3 \| 5\.0 ms \| 900\.0 ms \| 900\.0 ms \| 50\.0 % → 3\.0 % \| 1400\.0 ms \| – \|$/m);
    assert.match(markdown, /^\| start hsm-a1 \| 20s \| 30s \| 100 \| 0 \|.*\| 3000\.0 ms \|$/m);
    assert.match(markdown, /!\[latency over time\]\(latency\.svg\)/);
  });

  it('draws the fault steps and the failed calls on the chart', () => {
    const svg = renderLatencyChart({
      title: 'made-up',
      originMs: origin,
      durationMs: 30_000,
      calls,
      marks: [{ atMs: 10_000, label: 'kill hsm-a1', breaking: true }, { atMs: 20_000, label: 'start hsm-a1', breaking: false }],
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, />kill hsm-a1<\/text>/);
    assert.match(svg, />start hsm-a1<\/text>/);
    assert.match(svg, /failed call \(3\)/);
    assert.equal(svg.match(/stroke-dasharray/g)?.length, 2);
    assert.equal(svg.match(/<path d="M/g)?.length, 3, 'one cross per failed call');
    // Throughput has its own strip and scale (0 to the peak), not the latency axis.
    assert.match(svg, /successful calls per \d+ ms \(strip below, peak \d+\)/);
    assert.match(svg, /text-anchor="end">0<\/text>/);
    assert.doesNotMatch(svg, />0\.1 ms</, 'the latency axis starts at the decade below the fastest call, not at 0.1 ms');
  });
});
