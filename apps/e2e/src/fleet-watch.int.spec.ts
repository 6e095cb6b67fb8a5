import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { hsmctlCommand } from './hsmctl-run.js';
import { workspaceRoot } from './process-run.js';

// `hsmctl fleet watch` as an operator runs it: a real hsmctl process against
// a real broker, interrupted the way Ctrl-C interrupts it (SIGINT).

describe('hsmctl fleet watch against a real broker', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;

  before(async () => {
    target = await startBrokerUnderTest({ faultInjection: true });
  });

  after(async () => {
    await target.dispose();
  });

  it('refreshes the fleet, shows an injected fault, and exits 0 on SIGINT', async () => {
    const { command, args } = hsmctlCommand(target.address, ['fleet', 'watch', '--interval-ms', '200']);
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HSMB_')));
    const child = spawn(command, [...args], { cwd: workspaceRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const seen = (pattern: RegExp): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (pattern.test(out)) {
            child.stdout.off('data', onData);
            resolve();
          }
        };
        const onData = (chunk: Buffer): void => {
          out += chunk.toString();
          check();
        };
        child.stdout.on('data', onData);
        check();
      });
    try {
      await seen(/Ctrl-C to quit[\s\S]*hsm-c1[\s\S]*Ctrl-C to quit[\s\S]*hsm-c1/);
      assert.match(out, /ZONE\s+HEALTHY\s+FENCED\s+RPS/);
      assert.match(out, /APPLIANCE\s+ZONE\s+STATE\s+BREAKER\s+IN-FLIGHT\s+RPS\s+P99 MS\s+EWMA MS\s+FAULTS/);
      for (const id of ['hsm-a1', 'hsm-b1', 'hsm-c1']) assert.match(out, new RegExp(`${id}\\s+az-`));
      target.broker.fleet.injectFault('hsm-b1', { kind: 'LATENCY', probability: 0.5, latencyMs: 5, durationMs: 0 });
      await seen(/hsm-b1\s+az-b\s+\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+\S+\s+LATENCY/);
    } finally {
      child.kill('SIGINT');
    }
    const result = await exited;
    assert.deepEqual(result, { code: 0, signal: null }, `exit after SIGINT; stderr: ${err}`);
    assert.equal(err, '');
  });
});
