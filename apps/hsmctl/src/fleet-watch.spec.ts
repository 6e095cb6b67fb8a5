import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { ApplianceState, ApplianceStatus, BreakerState, FaultKind, type BrokerClient, type GetFleetStatusResponse } from '@hsm-broker/client';
import { runCli, type ConnectBroker } from './cli.js';
import { renderWatchFrame, sampleOf } from './fleet-watch.js';

function status(requests: number, p99 = 3.25): GetFleetStatusResponse {
  const appliance = (id: string, zone: string, extra: Partial<ApplianceStatus> = {}): ApplianceStatus =>
    ApplianceStatus.fromPartial({ id, zone, state: ApplianceState.HEALTHY, breakerState: BreakerState.CLOSED, requestsTotal: requests, latencyEwmaMs: 1.5, latencyP99Ms: p99, ...extra });
  return {
    localZone: 'az-a',
    zones: [
      { name: 'az-a', applianceCount: 1, healthyCount: 1 },
      { name: 'az-b', applianceCount: 1, healthyCount: 0 },
    ],
    appliances: [
      appliance('hsm-a1', 'az-a'),
      appliance('hsm-b1', 'az-b', { state: ApplianceState.OPEN, breakerState: BreakerState.OPEN, faults: [{ kind: FaultKind.ERROR, probability: 0, latencyMs: 0 }] }),
    ],
    fencedZones: [],
  };
}

async function watch(argv: string[], statuses: (() => Promise<GetFleetStatusResponse>)[], stdoutIsTTY: boolean, during?: (frames: number) => void): Promise<{ code: number; out: string; calls: number }> {
  const chunks: Buffer[] = [];
  let calls = 0;
  const stdout = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        during?.(chunks.length);
        callback();
      },
    }),
    { isTTY: stdoutIsTTY },
  );
  const client = {
    getFleetStatus: () => {
      const next = statuses[Math.min(calls, statuses.length - 1)];
      calls++;
      return next ? next() : Promise.reject(new Error('no status'));
    },
    close: () => undefined,
  } as unknown as BrokerClient;
  const connect: ConnectBroker = () => client;
  const code = await runCli(
    argv,
    {
      stdin: Object.assign(Readable.from([]), { isTTY: false }),
      stdout,
      stderr: Object.assign(new Writable({ write: (_chunk, _encoding, callback) => callback() }), { isTTY: false }),
      env: {},
    },
    connect,
  );
  return { code, out: Buffer.concat(chunks).toString(), calls };
}

describe('hsmctl fleet watch', () => {
  it('renders zones and appliances with breaker, rps from the previous frame and p99', () => {
    const first = status(100);
    const frame = renderWatchFrame(status(150), '127.0.0.1:50051', 11_000, sampleOf(first, 1_000));
    assert.match(frame, /^hsm-broker fleet at 127\.0\.0\.1:50051 · 00:00:11 UTC · 1\/2 healthy · Ctrl-C to quit/);
    assert.match(frame, /az-a \(local\)\s+1\/1\s+-\s+5\.0/);
    assert.match(frame, /hsm-a1\s+az-a\s+HEALTHY\s+CLOSED\s+0\s+5\.0\s+3\.3\s+1\.5\s+-/);
    assert.match(frame, /hsm-b1\s+az-b\s+OPEN\s+OPEN\s+0\s+5\.0\s+3\.3\s+1\.5\s+ERROR/);
    assert.match(renderWatchFrame(first, '', 0, undefined), /hsm-a1\s+az-a\s+HEALTHY\s+CLOSED\s+0\s+-\s/, 'no rate before a second frame');
  });

  it('redraws in place on a terminal and restores the cursor after --count frames', async () => {
    const result = await watch(['fleet', 'watch', '--interval-ms', '200', '--count', '2'], [() => Promise.resolve(status(1)), () => Promise.resolve(status(3))], true);
    assert.equal(result.code, 0);
    assert.equal(result.calls, 2);
    assert.ok(result.out.startsWith('\x1b[?25l'), 'hides the cursor');
    assert.equal(result.out.split('\x1b[H\x1b[2J').length - 1, 2, 'clears the screen before each frame');
    assert.ok(result.out.endsWith('\x1b[?25h'), 'shows the cursor again');
  });

  it('keeps watching when the broker stops answering, and quits cleanly on Ctrl-C', async () => {
    let interrupted = false;
    const result = await watch(['fleet', 'watch', '--interval-ms', '200'], [() => Promise.resolve(status(1)), () => Promise.reject(new Error('connection refused'))], false, (frames) => {
      if (frames === 2 && !interrupted) {
        interrupted = true;
        setImmediate(() => process.emit('SIGINT'));
      }
    });
    assert.equal(result.code, 0);
    assert.ok(!result.out.includes('\x1b'), 'no terminal escapes when stdout is not a terminal');
    assert.match(result.out, /broker not answering: connection refused/);
    assert.equal(process.listenerCount('SIGINT'), 0, 'the Ctrl-C handler is removed');
  });

  it('refuses an interval out of range', async () => {
    const result = await watch(['fleet', 'watch', '--interval-ms', '10'], [], false);
    assert.equal(result.code, 2);
    assert.equal(result.calls, 0);
  });
});
