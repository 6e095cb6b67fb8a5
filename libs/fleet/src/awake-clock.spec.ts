import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { AwakeClock, setAwakeTimeout, stallGapMs } from './awake-clock.js';

/** Holds the event loop, as parsing a huge request or a long garbage collection does. */
function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // Busy: nothing else runs meanwhile.
  }
}

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
      block(500);
    });
    await new Promise((resolve) => setTimeout(resolve, 80));
  } finally {
    child.kill();
  }
  return order;
}

describe('AwakeClock', () => {
  it('counts each interval up to the stall gap', () => {
    const clock = new AwakeClock(1000);
    assert.equal(clock.read(1040), 40);
    assert.equal(clock.read(1040 + 5000), 40 + stallGapMs, 'a 5 s stall counts as the gap');
    clock.resume(20_000);
    assert.equal(clock.read(20_010), 50 + stallGapMs, 'nothing counted while paused');
    assert.equal(clock.read(20_000), 50 + stallGapMs, 'a clock going back counts nothing');
  });
});

describe('setAwakeTimeout', () => {
  it('lets a reply that arrived during a stall settle before the timer fires', async () => {
    assert.deepEqual(await orderAfterStall((callback, ms) => setAwakeTimeout(callback, ms)), ['reply', 'timer']);
  });

  it('is needed: a plain timer fires first after the same stall', async () => {
    assert.deepEqual(await orderAfterStall((callback, ms) => setTimeout(callback, ms)), ['timer', 'reply']);
  });

  it('does not count a stall as waiting time, however long', async () => {
    let fired = false;
    const timer = setAwakeTimeout(() => (fired = true), 300);
    await new Promise((resolve) => setTimeout(resolve, 20));
    block(700);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(fired, false, 'about 180 ms awake of 300');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(fired, true, 'fires once awake long enough');
    timer.clear();
  });

  it('can be cleared before it fires', async () => {
    let fired = false;
    setAwakeTimeout(() => (fired = true), 5).clear();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(fired, false);
  });
});
