import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPipeline, runProcess } from './process-run.js';

const node = (script: string) => ({ command: process.execPath, args: ['-e', script] });

describe('runProcess', () => {
  it('feeds stdin and collects stdout, stderr and the exit status', async () => {
    const result = await runProcess(process.execPath, [
      '-e',
      'process.stdin.pipe(process.stdout); process.stderr.write("note"); process.stdin.on("end", () => { process.exitCode = 7; });',
    ], { input: Buffer.from([0, 1, 2, 255]) });
    assert.equal(result.status, 7);
    assert.deepEqual(result.stdout, Buffer.from([0, 1, 2, 255]));
    assert.equal(result.stderr, 'note');
  });

  it('kills a process that outlives its timeout, and says which', async () => {
    await assert.rejects(
      runProcess(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { timeoutMs: 200 }),
      /did not finish within 200 ms/,
    );
  });
});

describe('runPipeline', () => {
  it("connects each process's stdout to the next one's stdin", async () => {
    const [upper, count] = await runPipeline(
      [
        node('process.stdin.on("data", (chunk) => process.stdout.write(chunk.toString().toUpperCase()));'),
        node('let text = ""; process.stdin.on("data", (c) => { text += c; }); process.stdin.on("end", () => process.stdout.write(`${text}:${text.length}`));'),
      ],
      { input: 'pipe me' },
    );
    assert.equal(upper?.status, 0);
    assert.equal(upper?.stdout.length, 0, 'the first stdout went down the pipe');
    assert.equal(count?.stdout.toString(), 'PIPE ME:7');
  });

  it('reports each exit status when a stage fails', async () => {
    const [first, second] = await runPipeline([node('process.exit(3)'), node('process.stdin.resume()')]);
    assert.equal(first?.status, 3);
    assert.equal(second?.status, 0);
  });
});
