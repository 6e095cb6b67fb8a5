import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { setStallTolerantTimeout } from './stall-tolerant-timer.js';

/**
 * Order of a reply from another process and a timer, when the event loop
 * stalls past the timer while the reply is already waiting in the pipe (a
 * worker answering while the broker is busy receiving a large request).
 */
async function orderAfterStall(arm: (callback: () => void, ms: number) => void): Promise<string[]> {
  const child = spawn(process.execPath, ['-e', "process.stdout.write('ready'); process.stdin.once('data', () => process.stdout.write('reply'))"], { stdio: ['pipe', 'pipe', 'inherit'] });
  const order: string[] = [];
  try {
    await new Promise((resolve) => child.stdout.once('data', resolve));
    await new Promise<void>((resolve) => {
      child.stdout.once('data', () => {
        order.push('reply');
        resolve();
      });
      child.stdin.write('go');
      arm(() => order.push('timer'), 20);
      // The reply arrives while the loop stands still for longer than the timer.
      const until = Date.now() + 500;
      while (Date.now() < until) {
        // busy: a stalled event loop
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    child.kill();
  }
  return order;
}

describe('setStallTolerantTimeout', () => {
  it('lets a reply that arrived during a stall settle before the timer fires', async () => {
    assert.deepEqual(await orderAfterStall(setStallTolerantTimeout), ['reply', 'timer']);
  });

  it('is needed: a plain timer fires first after the same stall', async () => {
    assert.deepEqual(await orderAfterStall((callback, ms) => setTimeout(callback, ms)), ['timer', 'reply']);
  });

  it('can be cleared before it fires', async () => {
    let fired = false;
    clearTimeout(setStallTolerantTimeout(() => (fired = true), 5));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(fired, false);
  });
});
