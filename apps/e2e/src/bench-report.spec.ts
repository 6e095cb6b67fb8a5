import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { workspaceRoot } from './process-run.js';

// The bench's report writer, chart and target judgement, on fixed results:
// what `npm run bench` writes to reports/ must follow from its numbers.

// The bench is plain JavaScript with no types to import: its results are `any` here.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call */
type BenchModule = Record<string, any>;
const load = async (file: string): Promise<BenchModule> => (await import(pathToFileURL(join(workspaceRoot, 'tools', 'bench', file)).href)) as BenchModule;

const cpu = (brokerMain: number, brokerWorkers: number, generator: number, other = 5): Record<string, number> => ({
  brokerMain,
  brokerWorkers,
  generator,
  other,
  machine: brokerMain + brokerWorkers + generator + other,
});
const h2load = { kind: 'h2load', processes: 1, settings: 'h2load -c 8 -m 16 -t 1 -D 8' };
const grpcJs = { kind: 'grpc-js', processes: 2, settings: '2 processes × 2 batches of 100 in flight' };
const run = (opsPerSec: number, runCpu: Record<string, number>, generator = h2load, p99Ms = 4): Record<string, unknown> => ({
  opsPerSec,
  p50Ms: 1.5,
  p99Ms,
  p999Ms: p99Ms * 2,
  failed: 0,
  failures: [],
  cpu: runCpu,
  generator,
});
const direct = (opsPerSec: number): Record<string, unknown> => ({ processes: 6, opsPerSec, p50Ms: 0.1, p99Ms: 0.5, errorCount: 0, cpu: { measuring: 195, other: 5, machine: 200 } });

/** One run of every section, with numbers chosen so some targets are met and some missed. */
function fixedResults(): Record<string, any> {
  return {
    generatedAt: '2026-12-02T12:00:00.000Z',
    command: 'npm run bench -- --quick',
    totalS: 61.4,
    machine: { nproc: 2, cpuModel: 'Test CPU', memoryGiB: 8, node: 'v20.19.0', platform: 'Linux', h2load: 'h2load nghttp2/1.52.0', loadAverageAtStart: [1.5, 1.2, 1], loadAverageAtEnd: [2, 1.5, 1.1], busyBeforeStartPercent: 12, pkcs11Library: 'SoftHSM 2.6' },
    settings: { warmupS: 2, durationS: 8, callTimeoutMs: 5000, h2load: { clients: 8, streams: 16, threads: 1 }, batch: { generators: 2, inFlight: 2 }, stream: { generators: 2, inFlight: 128 }, workersPerAppliance: 2, appliances: 3, batchItems: 100, soakS: 300 },
    floor: run(10_000, cpu(100, 0, 60, 10)),
    broker: {
      fleet: '3x1',
      workers: 6,
      startupS: 3.2,
      // Sign at 80% of the floor (met); Encrypt at 20% with the main process at 98% of a core (missed, main saturated).
      unary: { 'sign-ecdsa': run(8000, cpu(90, 60, 40)), encrypt: run(2000, cpu(98, 30, 20)) },
      // ECDSA batch at 50% of direct (missed, workers at their limit); AES batch at 60% (met).
      batch: { 'sign-ecdsa': run(15_000, cpu(40, 190, 10), grpcJs), encrypt: run(60_000, cpu(60, 100, 20), grpcJs) },
      stream: { 'sign-ecdsa': run(12_000, cpu(70, 100, 30), grpcJs) },
    },
    latency: [
      {
        operation: 'sign-ecdsa',
        title: 'Sign ECDSA P-256',
        peakOpsPerSec: 8000,
        at: [
          { fraction: 0.5, targetRatePerSec: 4000, ...run(3990, cpu(50, 30, 10), h2load, 3.2) },
          { fraction: 0.9, targetRatePerSec: 7200, ...run(7150, cpu(85, 55, 20), h2load, 12) },
        ],
      },
    ],
    soak: {
      durationS: 300,
      operation: 'sign-ecdsa',
      run: run(7900, cpu(90, 60, 40)),
      rss: [0, 60, 120, 180, 240, 300].map((atS, index) => ({ atS, mainBytes: (100 + index) * 2 ** 20, workerBytes: 300 * 2 ** 20 })),
      growth: { startBytes: 100 * 2 ** 20, middleBytes: 102 * 2 ** 20, endBytes: 105 * 2 ** 20, maxBytes: 105 * 2 ** 20, secondHalfGrowth: 3 / 102 },
    },
    ceiling: { processes: 6, byOperation: { 'sign-ecdsa': { single: direct(15_000), many: direct(30_000) }, encrypt: { single: direct(50_000), many: direct(100_000) } } },
    scaling: [
      { appliances: 1, fleet: '1x1', workers: 2, unary: run(5000, cpu(80, 60, 30)), batch: run(8000, cpu(40, 120, 10), grpcJs) },
      { appliances: 2, fleet: '2x1', workers: 4, unary: run(7000, cpu(90, 70, 30)), batch: run(14_000, cpu(50, 140, 10), grpcJs) },
      { appliances: 3, fleet: '3x1', workers: 6, unary: run(8000, cpu(92, 70, 30)), batch: run(15_000, cpu(50, 140, 10), grpcJs) },
    ],
  };
}

describe('bench report', () => {
  it('judges each target from the numbers and names what saturated first', async () => {
    const { evaluateTargets } = await load('bench-targets.mjs');
    const outcomes: Array<{ target: string; met: boolean | null; saturated?: string; measured: string }> = evaluateTargets(fixedResults());
    const byTarget = (start: string): { met: boolean | null; saturated?: string; measured: string } => {
      const found = outcomes.find((outcome) => outcome.target.startsWith(start));
      assert.ok(found, `a target starting "${start}" in ${JSON.stringify(outcomes.map((outcome) => outcome.target))}`);
      return found;
    };
    assert.equal(byTarget('unary Sign ECDSA').met, true);
    assert.equal(byTarget('unary Sign ECDSA').measured, '80% (8000 of 10000 calls/s)');
    const encrypt = byTarget('unary Encrypt');
    assert.equal(encrypt.met, false);
    assert.match(encrypt.saturated ?? '', /^broker main process \(98% of its limit/);
    const batchSign = byTarget('batch Sign ECDSA');
    assert.equal(batchSign.met, false);
    assert.match(batchSign.saturated ?? '', /^broker workers/);
    assert.equal(byTarget('batch Encrypt').met, true);
    // No RSA in the fixed run: judged as not measured rather than met or missed.
    assert.equal(byTarget('batch Sign RSA-2048').met, null);
    assert.equal(byTarget('Sign ECDSA P-256: p99').met, true);
    // 8k → 14k → 15k: each step grew by at least 5%.
    assert.equal(byTarget('batch Sign throughput grows').met, true);
    assert.equal(byTarget('broker RSS flat').met, true);
  });

  it('says when throughput stopped growing with appliances though cores were free, and not when they had run out', async () => {
    const { evaluateTargets } = await load('bench-targets.mjs');
    const results = fixedResults();
    // 2 appliances left cores free (155% of 200%), yet the third added under 5%.
    results['scaling'][1].batch.cpu = cpu(40, 100, 10);
    results['scaling'][2].batch.opsPerSec = 14_100;
    const scaling = (evaluateTargets(results) as Array<{ target: string; met: boolean | null; saturated?: string }>).find((outcome) => outcome.target.startsWith('batch Sign throughput'));
    assert.equal(scaling?.met, false);
    assert.match(scaling?.saturated ?? '', /^3 appliances: /);
    results['scaling'][1].batch.cpu = cpu(50, 140, 10);
    const saturated = (evaluateTargets(results) as Array<{ target: string; met: boolean | null }>).find((outcome) => outcome.target.startsWith('batch Sign throughput'));
    assert.equal(saturated?.met, true, 'with every core busy at 2 appliances, no growth is expected');
  });

  it('writes every section, the load average and each target with its result into the Markdown', async () => {
    const { evaluateTargets } = await load('bench-targets.mjs');
    const { renderMarkdown } = await load('bench-markdown.mjs');
    const results = fixedResults();
    results['targets'] = evaluateTargets(results);
    const markdown: string = renderMarkdown(results);
    for (const heading of ['## Targets', '## gRPC floor', '## Broker: fleet 3x1, 6 worker processes', '## Latency at 50% and 90% of peak', '## Memory: 300 s soak', '## Ceiling', '## Scaling with appliances']) {
      assert.ok(markdown.includes(heading), `missing ${heading}`);
    }
    assert.match(markdown, /\*\*Load average\*\* at start 1\.5 \/ 1\.2 \/ 1/);
    assert.match(markdown, /\| unary Encrypt AES-GCM ≥ 70% of the echo floor \| 20% \(2000 of 10000 calls\/s\) \| \*\*missed\*\* \| broker main process/);
    assert.match(markdown, /\| Sign ECDSA P-256 \| batch \| 15,000 \|/);
    assert.match(markdown, /!\[throughput, scaling and memory\]\(bench\.svg\)/);
  });

  it('draws one bar per measured figure, the floor line, scaling and RSS lines, as well-formed SVG', async () => {
    const { renderChart } = await load('bench-chart.mjs');
    const svg: string = renderChart(fixedResults());
    assert.ok(svg.startsWith('<?xml'));
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    // Bars: sign-ecdsa has ceiling, unary, batch, stream; encrypt ceiling, unary, batch.
    const bars = [...svg.matchAll(/<rect x="210" y="[\d.]+" width="([\d.]+)" height="8"/g)];
    assert.equal(bars.length, 7);
    assert.ok(svg.includes('gRPC echo floor 10k'));
    assert.equal((svg.match(/<path d="M/g) ?? []).length, 4, 'two scaling lines and two RSS lines');
    // Every element closed: as many opening as closing text elements, no stray ampersand.
    assert.equal((svg.match(/<text /g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length);
    assert.doesNotMatch(svg, /&(?!lt;|gt;|amp;|quot;)/);
  });
});
