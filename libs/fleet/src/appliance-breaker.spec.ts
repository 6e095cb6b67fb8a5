import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { ApplianceBreaker } from './appliance-breaker.js';
import type { BreakerState } from './appliance-breaker.js';

const policy = { consecutiveFailures: 3, errorThresholdPercentage: 50, volumeThreshold: 1000, rollingWindowMs: 10_000, openMs: 50, maxOpenMs: 400 };
/** The broker's defaults (routing.* in the README's configuration table). */
const defaults = { consecutiveFailures: 5, errorThresholdPercentage: 50, volumeThreshold: 20, rollingWindowMs: 10_000, openMs: 1000, maxOpenMs: 30_000 };
const applianceFault = (): Promise<never> => Promise.reject(new BrokerError(Code.UNAVAILABLE, 'device error', { failureClass: 'appliance' }));
const callerError = (): Promise<never> => Promise.reject(new BrokerError(Code.INVALID_ARGUMENT, 'bad input'));
const ok = (): Promise<string> => Promise.resolve('ok');

/** Records every state change, so tests assert on what happened rather than on how long it took. */
function watched(breaker: ApplianceBreaker): BreakerState[] {
  const changes: BreakerState[] = [];
  breaker.onStateChange((state) => changes.push(state));
  return changes;
}

describe('ApplianceBreaker', () => {
  // opossum schedules its open period and rolling window with the global
  // timers; node:test's fake clock replaces them, so time moves only when a
  // test says so and the machine's load cannot change an outcome.
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('opens after consecutive appliance faults, not after caller errors', async () => {
    const breaker = new ApplianceBreaker('t1', policy);
    const changes = watched(breaker);
    for (let i = 0; i < 50; i++) await breaker.fire(callerError).catch(() => undefined);
    assert.equal(breaker.state, 'closed');
    await breaker.fire(applianceFault).catch(() => undefined);
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'closed');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open');
    assert.deepEqual(changes, ['open']);
    assert.equal(breaker.ejections, 1);
    await assert.rejects(breaker.fire(ok), (error: unknown) => error instanceof BrokerError && error.reason === 'BREAKER_OPEN');
    breaker.shutdown();
  });

  it('opens at the default of 5 consecutive faults, not at 4', async () => {
    const breaker = new ApplianceBreaker('t-default', defaults);
    for (let i = 0; i < 4; i++) await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'closed', 'four faults in a row are not enough');
    await breaker.fire(ok);
    for (let i = 0; i < 4; i++) await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'closed', 'a success resets the count');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open', 'the fifth in a row opens it');
    breaker.shutdown();
  });

  it('opens on the error percentage over the rolling window once the volume is reached, not on a run of faults', async () => {
    const breaker = new ApplianceBreaker('t-stat', { ...defaults, consecutiveFailures: 1000 });
    for (let i = 0; i < 10; i++) await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'closed', '10 calls, all faults: below the volume threshold of 20');
    for (let i = 0; i < 10; i++) await breaker.fire(ok);
    assert.equal(breaker.state, 'closed', '20 calls at exactly 50 % errors: not above the threshold');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open', '21 calls at 52 % errors open it');
    assert.equal(breaker.consecutiveFailures, 1, 'not the consecutive rule');
    breaker.shutdown();
  });

  it('forgets faults that left the rolling window', async () => {
    const breaker = new ApplianceBreaker('t-window', { ...defaults, consecutiveFailures: 1000 });
    for (let i = 0; i < 10; i++) await breaker.fire(applianceFault).catch(() => undefined);
    mock.timers.tick(defaults.rollingWindowMs + 1000);
    for (let i = 0; i < 10; i++) await breaker.fire(ok);
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'closed', 'the old faults no longer count: 1 of 11 in the window');
    breaker.shutdown();
  });

  it('ignores caller errors in the error percentage', async () => {
    const breaker = new ApplianceBreaker('t-stat-caller', { ...defaults, consecutiveFailures: 1000 });
    for (let i = 0; i < 40; i++) await breaker.fire(callerError).catch(() => undefined);
    assert.equal(breaker.state, 'closed');
    breaker.shutdown();
  });

  it('backs off exponentially while half-open trials fail, and resets on success', async () => {
    const breaker = new ApplianceBreaker('t2', policy);
    const changes = watched(breaker);
    for (let i = 0; i < 3; i++) await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.openMs, 50);
    mock.timers.tick(49);
    assert.equal(breaker.state, 'open', 'still inside the first open period');
    mock.timers.tick(1);
    assert.equal(breaker.state, 'half-open');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.openMs, 100, 'the failed trial doubled the open period');
    mock.timers.tick(99);
    assert.equal(breaker.state, 'open', 'the second open period is longer');
    mock.timers.tick(1);
    assert.equal(breaker.state, 'half-open');
    // Fails again, and again: 200, then capped at maxOpenMs 400.
    await breaker.fire(applianceFault).catch(() => undefined);
    mock.timers.tick(200);
    assert.equal(breaker.state, 'half-open');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.openMs, 400);
    mock.timers.tick(400);
    assert.equal(breaker.state, 'half-open');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.openMs, 400, 'capped at maxOpenMs');
    mock.timers.tick(400);
    assert.equal(await breaker.fire(ok), 'ok');
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.openMs, 50, 'a success resets the open period');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'closed']);
    breaker.shutdown();
  });

  it('closes after a half-open trial only on an answer: a trial that timed out or found no free session re-opens it', async () => {
    const breaker = new ApplianceBreaker('t-trial', policy);
    const changes = watched(breaker);
    const overload = (): Promise<never> => Promise.reject(new BrokerError(Code.RESOURCE_EXHAUSTED, 'no free session', { failureClass: 'overload' }));
    const expired = (): Promise<never> => Promise.reject(new BrokerError(Code.DEADLINE_EXCEEDED, 'too slow', { failureClass: 'deadline' }));
    // Closed: neither counts against the appliance.
    for (let i = 0; i < 10; i++) await breaker.fire(i % 2 === 0 ? overload : expired).catch(() => undefined);
    assert.equal(breaker.state, 'closed');
    for (let i = 0; i < 3; i++) await breaker.fire(applianceFault).catch(() => undefined);
    mock.timers.tick(50);
    assert.equal(breaker.state, 'half-open');
    await breaker.fire(overload).catch(() => undefined);
    assert.equal(breaker.state, 'open', 'a trial that found no free session is no answer');
    mock.timers.tick(100);
    assert.equal(breaker.state, 'half-open');
    await breaker.fire(expired).catch(() => undefined);
    assert.equal(breaker.state, 'open', 'a trial that ran out of time is no answer');
    mock.timers.tick(200);
    await breaker.fire(callerError).catch(() => undefined);
    assert.equal(breaker.state, 'closed', 'a caller error is an answer');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'closed']);
    breaker.shutdown();
  });

  it('closes at once when an out-of-schedule probe succeeds, and stays open when it fails', async () => {
    const breaker = new ApplianceBreaker('t3', { ...policy, openMs: 60_000, maxOpenMs: 60_000 });
    for (let i = 0; i < 3; i++) await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open');
    assert.equal(await breaker.retryNow(applianceFault), false);
    assert.equal(breaker.state, 'open');
    assert.equal(await breaker.retryNow(() => Promise.resolve()), true);
    assert.equal(breaker.state, 'closed');
    breaker.shutdown();
  });
});
