import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DockerFaultDriver } from '../faults/docker-fault-driver.js';
import { InjectionFaultDriver } from '../faults/injection-fault-driver.js';
import type { BrokerClient } from '@hsm-broker/client';
import { checkScenarioAgainst } from './gameday-run.js';
import { loadScenarioFile, validateScenario } from './scenario-file.js';

const examples = fileURLToPath(new URL('../../../../examples/gamedays/', import.meta.url));
const topology = {
  appliances: ['a', 'b', 'c'].flatMap((zone) => [1, 2].map((n) => ({ id: `hsm-${zone}${String(n)}`, zone: `az-${zone}` }))),
};

const valid = {
  name: 'kill-one',
  duration: '60s',
  steps: [
    { at: '10s', fault: 'kill', appliance: 'hsm-a1' },
    { at: 20, fault: 'start', appliance: 'hsm-a1' },
  ],
};

function refused(change: (document: Record<string, unknown>) => void, message: RegExp): void {
  const document = structuredClone(valid) as Record<string, unknown>;
  change(document);
  assert.throws(() => validateScenario(document), { message });
}

describe('game-day scenario files', () => {
  it('reads a valid scenario with defaults for what it leaves out', () => {
    const scenario = validateScenario(valid);
    assert.equal(scenario.durationMs, 60_000);
    assert.deepEqual(scenario.target, { kind: 'injection' });
    assert.deepEqual(scenario.steps.map((step) => step.atMs), [10_000, 20_000]);
    assert.equal(scenario.load.deadlineMs, 2000);
    assert.equal(scenario.load.rates.CreateKey, 1);
  });

  it('names the field of every mistake', () => {
    refused((d) => delete d['name'], /^name: expected a non-empty string/);
    refused((d) => (d['duration'] = 'soon'), /^duration: expected a duration/);
    refused((d) => (d['color'] = 'red'), /^color: unknown field/);
    refused((d) => (d['steps'] = 'kill'), /^steps: expected a list/);
    refused((d) => ((d['steps'] as Record<string, unknown>[])[1] = { at: '5s', fault: 'start', appliance: 'hsm-a1' }), /^steps\[1\]\.at: steps must be in time order/);
    refused((d) => ((d['steps'] as Record<string, unknown>[])[0] = { at: '1s', fault: 'explode', appliance: 'hsm-a1' }), /^steps\[0\]\.fault: expected one of kill, stop/);
    refused((d) => ((d['steps'] as Record<string, unknown>[])[0] = { at: '1s', fault: 'pause' }), /^steps\[0\]\.appliance: expected a non-empty string/);
    refused((d) => ((d['steps'] as Record<string, unknown>[])[0] = { at: '1s', fault: 'slow', appliance: 'hsm-a1' }), /^steps\[0\]\.ms: expected a number from 0 to 60000/);
    refused((d) => ((d['steps'] as Record<string, unknown>[])[0] = { at: '1s', fault: 'killZone', appliance: 'hsm-a1' }), /^steps\[0\]\.appliance: not used by killZone/);
    refused((d) => ((d['steps'] as Record<string, unknown>[])[0] = { at: '2m', fault: 'clear' }), /^steps\[0\]\.at: expected a duration from 0ms to 1m/);
    refused((d) => (d['target'] = 'kubernetes'), /^target\.kind: expected one of injection, docker, testcontainers/);
    refused((d) => (d['target'] = { kind: 'injection', project: 'x' }), /^target\.project: only for target kind docker/);
    refused((d) => (d['load'] = { rates: { Encrypt: -1 } }), /^load\.rates\.Encrypt: expected a number from 0/);
    refused((d) => (d['load'] = { rates: { Hash: 1 } }), /^load\.rates\.Hash: unknown field/);
  });

  it('ships the nine failover scenarios, each valid and runnable by the target it names', async () => {
    const files = readdirSync(examples).filter((file) => file.endsWith('.yaml')).sort();
    assert.equal(files.length, 9);
    const client = {} as BrokerClient;
    for (const file of files) {
      const scenario = await loadScenarioFile(join(examples, file));
      const driver =
        scenario.target.kind === 'docker'
          ? new DockerFaultDriver(() => Promise.reject(new Error('not run')), topology, { project: scenario.target.project })
          : new InjectionFaultDriver(client, topology);
      assert.doesNotThrow(() => checkScenarioAgainst(scenario, driver, topology), file);
    }
  });

  it('refuses, before anything runs, a step the target cannot do or an appliance the fleet lacks', () => {
    const driver = new InjectionFaultDriver({} as BrokerClient, topology);
    const zeroize = validateScenario({ ...valid, steps: [{ at: 1, fault: 'zeroize', appliance: 'hsm-a1' }] });
    assert.throws(() => checkScenarioAgainst(zeroize, driver, topology), { message: /^steps\[0\]\.fault: the injection target cannot: zeroize/ });
    const unknown = validateScenario({ ...valid, steps: [{ at: 1, fault: 'kill', appliance: 'hsm-z9' }] });
    assert.throws(() => checkScenarioAgainst(unknown, driver, topology), /steps\[0\]\.appliance: 'hsm-z9' is not in the fleet/);
  });

  it('names the file when it cannot be read or parsed', async () => {
    await assert.rejects(loadScenarioFile('/nonexistent/game.yaml'), /\/nonexistent\/game\.yaml: ENOENT/);
  });
});
