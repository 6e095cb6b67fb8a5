import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { ApplianceBreaker } from './appliance-breaker.js';

const policy = { consecutiveFailures: 3, errorThresholdPercentage: 50, volumeThreshold: 1000, rollingWindowMs: 10_000, openMs: 50, maxOpenMs: 400 };
const applianceFault = (): Promise<never> => Promise.reject(new BrokerError(Code.UNAVAILABLE, 'device error', { failureClass: 'appliance' }));
const callerError = (): Promise<never> => Promise.reject(new BrokerError(Code.INVALID_ARGUMENT, 'bad input'));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('ApplianceBreaker', () => {
  it('opens after consecutive appliance faults, not after caller errors', async () => {
    const breaker = new ApplianceBreaker('t1', policy);
    for (let i = 0; i < 50; i++) await breaker.fire(callerError).catch(() => undefined);
    assert.equal(breaker.state, 'closed');
    await breaker.fire(applianceFault).catch(() => undefined);
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'closed');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.ejections, 1);
    await assert.rejects(breaker.fire(() => Promise.resolve(1)), (error: unknown) => error instanceof BrokerError && error.reason === 'BREAKER_OPEN');
    breaker.shutdown();
  });

  it('backs off exponentially while half-open trials fail, and resets on success', async () => {
    const breaker = new ApplianceBreaker('t2', policy);
    for (let i = 0; i < 3; i++) await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.openMs, 50);
    await sleep(70);
    assert.equal(breaker.state, 'half-open');
    await breaker.fire(applianceFault).catch(() => undefined);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.openMs, 100);
    await sleep(60);
    assert.equal(breaker.state, 'open', 'the second open period is longer');
    await sleep(60);
    assert.equal(breaker.state, 'half-open');
    assert.equal(await breaker.fire(() => Promise.resolve('ok')), 'ok');
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.openMs, 50);
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
