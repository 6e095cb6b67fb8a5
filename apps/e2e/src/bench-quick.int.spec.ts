import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runProcess, workspaceRoot } from './process-run.js';
import { temporaryDirectory } from './temporary-directory.js';

// `npm run bench -- --quick`, cut to the sections that need a broker, the
// echo server, h2load, grpc-js generators and the pkcs11js ceiling, so the
// report is generated end to end on real SoftHSM tokens in well under a
// minute. The numbers are not judged (timed tests would flake on a shared
// machine); that every figure was measured, without failed calls, is.

interface Run {
  opsPerSec: number;
  failed: number;
  cpu: Record<string, number | null>;
}

describe('npm run bench -- --quick', { timeout: 150_000 }, () => {
  it('measures the floor, the broker (unary, batch, stream) and the ceiling and writes bench.md, bench.svg and bench.json', async () => {
    await using out = temporaryDirectory('hsmb-e2e-bench-');
    // One generator process with one batch (or 32 stream requests) in flight: on a loaded machine a
    // 2 s window still sees batches complete, and no item waits past its deadline.
    const load = ['--batch-generators', '1', '--batch-in-flight', '1', '--stream-generators', '1', '--stream-in-flight', '32'];
    const args = [join(workspaceRoot, 'tools', 'bench', 'bench.mjs'), '--quick', '--only', 'floor,broker,ceiling', '--operations', 'sign-ecdsa', ...load, '--out', out.path];
    const result = await runProcess(process.execPath, args, { timeoutMs: 120_000 });
    assert.equal(result.status, 0, `bench failed:\n${result.stderr.slice(-3000)}`);
    assert.match(result.stdout.toString('utf8'), /total run time \d+ s/);

    const results = JSON.parse(readFileSync(out.file('bench.json'), 'utf8')) as {
      floor: Run;
      broker: { unary: Record<string, Run>; batch: Record<string, Run>; stream: Record<string, Run> };
      ceiling: { processes: number; byOperation: Record<string, { single: Run; many: Run & { processes: number } }> };
      targets: Array<{ target: string; met: boolean | null }>;
    };
    const measured: Array<[string, Run | undefined]> = [
      ['floor', results.floor],
      ['unary', results.broker.unary['sign-ecdsa']],
      ['batch', results.broker.batch['sign-ecdsa']],
      ['stream', results.broker.stream['sign-ecdsa']],
    ];
    for (const [name, run] of measured) {
      assert.ok(run && run.opsPerSec > 0, `${name}: some calls completed`);
      assert.equal(run.failed, 0, `${name}: no failed calls`);
      assert.ok(typeof run.cpu['generator'] === 'number', `${name}: the generator's CPU was read`);
    }
    assert.ok(typeof results.broker.unary['sign-ecdsa']?.cpu['brokerMain'] === 'number', "the broker main process's CPU was read");
    const ceiling = results.ceiling.byOperation['sign-ecdsa'];
    assert.ok(ceiling && ceiling.single.opsPerSec > 0 && ceiling.many.opsPerSec > 0, 'direct pkcs11js ran with 1 and N processes');
    assert.equal(ceiling.many.processes, results.ceiling.processes);
    // With the floor, the broker and the ceiling measured, these two targets are judged.
    for (const start of ['unary Sign ECDSA', 'batch Sign ECDSA']) {
      assert.notEqual(results.targets.find((outcome) => outcome.target.startsWith(start))?.met ?? null, null, `${start} judged`);
    }

    const markdown = readFileSync(out.file('bench.md'), 'utf8');
    for (const heading of ['## Targets', '## gRPC floor', '## Broker: fleet 3x1', '## Ceiling']) assert.ok(markdown.includes(heading), `bench.md has ${heading}`);
    assert.match(markdown, /\*\*Load average\*\* at start [\d.]+ \/ /);
    assert.ok(existsSync(out.file('bench.svg')));
    assert.match(readFileSync(out.file('bench.svg'), 'utf8'), /<svg [^>]*>[\s\S]*gRPC echo floor[\s\S]*<\/svg>/);
  });
});
