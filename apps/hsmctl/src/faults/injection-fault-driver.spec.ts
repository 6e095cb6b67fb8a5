import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultKind, type BrokerClient } from '@hsm-broker/client';
import { InjectionFaultDriver } from './injection-fault-driver.js';

const topology = {
  appliances: [
    { id: 'hsm-a1', zone: 'az-a' },
    { id: 'hsm-a2', zone: 'az-a' },
    { id: 'hsm-b1', zone: 'az-b' },
  ],
};

function fakeClient(): { client: BrokerClient; calls: string[] } {
  const calls: string[] = [];
  const client = {
    injectFault: (request: { applianceId: string; kind: FaultKind; latencyMs: number; probability: number; durationMs: number }) => {
      calls.push(`inject ${request.applianceId} ${FaultKind[request.kind] ?? '?'} ${String(request.latencyMs)} p=${String(request.probability)} d=${String(request.durationMs)}`);
      return Promise.resolve({});
    },
    clearFaults: (request: { applianceId: string }) => {
      calls.push(`clear ${request.applianceId === '' ? '*' : request.applianceId}`);
      return Promise.resolve({ cleared: 1 });
    },
  } as unknown as BrokerClient;
  return { client, calls };
}

describe('injection fault driver', () => {
  it('maps each action to the nearest injected fault', async () => {
    const { client, calls } = fakeClient();
    const driver = new InjectionFaultDriver(client, topology);
    for (const action of [
      { kind: 'kill', appliance: 'hsm-a1' },
      { kind: 'start', appliance: 'hsm-a1' },
      { kind: 'pause', appliance: 'hsm-a2' },
      { kind: 'unpause', appliance: 'hsm-a2' },
      { kind: 'partition', appliance: 'hsm-b1' },
      { kind: 'heal', appliance: 'hsm-b1' },
      { kind: 'slow', appliance: 'hsm-a1', ms: 200 },
      { kind: 'slow', appliance: 'hsm-a1', ms: 0 },
      { kind: 'killZone', zone: 'az-a' },
      { kind: 'partitionZone', zone: 'az-b' },
      { kind: 'clear' },
    ] as const) {
      await driver.apply(action);
    }
    await driver.restore();
    assert.deepEqual(calls, [
      'inject hsm-a1 CRASH 0 p=0 d=0',
      'clear hsm-a1',
      'inject hsm-a2 HANG 0 p=0 d=0',
      'clear hsm-a2',
      'inject hsm-b1 HANG 0 p=0 d=0',
      'clear hsm-b1',
      'inject hsm-a1 LATENCY 200 p=0 d=0',
      'clear hsm-a1',
      'inject hsm-a1 CRASH 0 p=0 d=0',
      'inject hsm-a2 CRASH 0 p=0 d=0',
      'inject hsm-b1 HANG 0 p=0 d=0',
      'clear *',
      'clear *',
    ]);
  });

  it('says what it cannot do, and refuses it without calling the broker', async () => {
    const { client, calls } = fakeClient();
    const driver = new InjectionFaultDriver(client, topology);
    assert.match(driver.unsupported('zeroize') ?? '', /docker or testcontainers/);
    assert.match(driver.unsupported('restartBroker') ?? '', /docker or testcontainers/);
    assert.equal(driver.unsupported('kill'), undefined);
    await assert.rejects(driver.apply({ kind: 'zeroize', appliance: 'hsm-a1' }), /wiped/);
    assert.deepEqual(calls, []);
    assert.equal(driver.explain({ kind: 'pause', appliance: 'hsm-a1' }), 'HANG injected on hsm-a1');
    assert.equal(driver.explain({ kind: 'killZone', zone: 'az-a' }), 'CRASH injected on hsm-a1, hsm-a2');
  });
});
