import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult, CommandRunner } from './command-runner.js';
import { DockerFaultDriver } from './docker-fault-driver.js';

const topology = {
  appliances: [
    { id: 'hsm-a1', zone: 'az-a' },
    { id: 'hsm-a2', zone: 'az-a' },
    { id: 'hsm-b1', zone: 'az-b' },
  ],
};

/** A docker CLI that knows one compose project and records every command line. */
function fakeDocker(): { run: CommandRunner; lines: string[] } {
  const lines: string[] = [];
  const run: CommandRunner = (program, args) => {
    lines.push([program, ...args].join(' '));
    const reply = (stdout: string, status = 0): Promise<CommandResult> => Promise.resolve({ status, stdout, stderr: status === 0 ? '' : 'boom' });
    if (args[0] === 'ps') {
      const service = /com\.docker\.compose\.service=(\S+)/.exec(args.join(' '))?.[1] ?? '';
      return reply(service === 'missing' ? '' : `id-${service}\n`);
    }
    if (args[0] === 'inspect') return reply('fleet_zone-a\nbridge\n');
    if (args[0] === 'network' && args[1] === 'ls') return reply('fleet_zone-a\nfleet_zone-b\nfleet_zone-c\n');
    if (args.includes('id-hsm-b1') && args[0] === 'kill') return reply('', 1);
    return reply('');
  };
  return { run, lines };
}

describe('docker fault driver', () => {
  it('finds containers by compose labels and acts on them with the docker CLI', async () => {
    const docker = fakeDocker();
    const driver = new DockerFaultDriver(docker.run, topology, { project: 'fleet' });
    await driver.apply({ kind: 'kill', appliance: 'hsm-a1' });
    await driver.apply({ kind: 'start', appliance: 'hsm-a1' });
    await driver.apply({ kind: 'pause', appliance: 'hsm-a2' });
    await driver.apply({ kind: 'unpause', appliance: 'hsm-a2' });
    await driver.apply({ kind: 'stop', appliance: 'hsm-a2' });
    await driver.apply({ kind: 'zeroize', appliance: 'hsm-a2' });
    await driver.apply({ kind: 'restartBroker' });
    assert.deepEqual(docker.lines, [
      'docker ps --all --quiet --filter label=com.docker.compose.project=fleet --filter label=com.docker.compose.service=hsm-a1',
      'docker kill id-hsm-a1',
      'docker start id-hsm-a1',
      'docker ps --all --quiet --filter label=com.docker.compose.project=fleet --filter label=com.docker.compose.service=hsm-a2',
      'docker pause id-hsm-a2',
      'docker unpause id-hsm-a2',
      'docker stop id-hsm-a2',
      'docker exec id-hsm-a2 hsm-node zeroize',
      'docker ps --all --quiet --filter label=com.docker.compose.project=fleet --filter label=com.docker.compose.service=broker',
      'docker restart id-broker',
    ]);
  });

  it('partitions from the project networks only and heals with the service name as alias', async () => {
    const docker = fakeDocker();
    const driver = new DockerFaultDriver(docker.run, topology, { project: 'fleet' });
    await driver.apply({ kind: 'partition', appliance: 'hsm-a1' });
    await driver.apply({ kind: 'heal', appliance: 'hsm-a1' });
    const changes = docker.lines.filter((line) => / network (dis)?connect /.test(line));
    assert.deepEqual(changes, [
      'docker network disconnect fleet_zone-a id-hsm-a1',
      'docker network connect --alias hsm-a1 fleet_zone-a id-hsm-a1',
    ]);
  });

  it('acts on every appliance of a zone, and restore undoes whatever is still broken', async () => {
    const docker = fakeDocker();
    const driver = new DockerFaultDriver(docker.run, topology, { project: 'fleet' });
    await driver.apply({ kind: 'killZone', zone: 'az-a' });
    await driver.apply({ kind: 'partition', appliance: 'hsm-b1' });
    docker.lines.length = 0;
    await driver.restore();
    assert.deepEqual(docker.lines, [
      'docker start id-hsm-a1',
      'docker start id-hsm-a2',
      'docker network connect --alias hsm-b1 fleet_zone-a id-hsm-b1',
    ]);
    docker.lines.length = 0;
    await driver.restore();
    assert.deepEqual(docker.lines, [], 'a second restore has nothing left to do');
  });

  it("reports docker's failure, a missing container, and what it cannot do", async () => {
    const docker = fakeDocker();
    const driver = new DockerFaultDriver(docker.run, topology, { project: 'fleet', zeroizeCommand: ['wipe', '--now'] });
    await assert.rejects(driver.apply({ kind: 'kill', appliance: 'hsm-b1' }), /docker kill id-hsm-b1 exited 1: boom/);
    await assert.rejects(driver.apply({ kind: 'kill', appliance: 'missing' }), /expected one container of service 'missing' in compose project 'fleet', found 0/);
    await assert.rejects(driver.apply({ kind: 'killZone', zone: 'az-x' }), /zone 'az-x' has no appliances/);
    assert.match(driver.unsupported('slow') ?? '', /delaying TCP proxy/);
    await assert.rejects(driver.apply({ kind: 'slow', appliance: 'hsm-a1', ms: 200 }), /delaying TCP proxy/);
    assert.equal(driver.unsupported('zeroize'), undefined);
    assert.equal(driver.explain({ kind: 'zeroize', appliance: 'hsm-a1' }), 'docker exec hsm-a1 wipe --now');
  });
});
