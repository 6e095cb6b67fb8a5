import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBrokerClient, KeySpec, KeyUsage, type BrokerClient } from '@hsm-broker/client';
import { runPkcs11Tool } from './appliance-token.js';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { runHsmctl } from './hsmctl-run.js';
import type { ProcessResult } from './process-run.js';

// `hsmctl fleet resync` and the replica columns of `fleet status`, against a
// real broker whose tokens are changed behind its back with OpenSC's
// pkcs11-tool: a key version deleted from one appliance is found lost and
// copied back; an object the registry does not know is reported as an
// orphan and left where it is. The broker's background reconciliation is
// slowed to once a day so that only the resync asked for repairs anything.

/** Asserts a zero exit and returns stdout as text. */
function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

describe('replica repair through hsmctl', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  let client: BrokerClient;
  /** The appliance whose token the tests damage: one outside the broker's own zone. */
  let damaged: string;
  let appliances: string[];
  const hsmctl = (args: readonly string[]): Promise<ProcessResult> => runHsmctl(target.address, args);

  async function holdersOf(keyId: string, version: number): Promise<string[]> {
    const key = (await client.describeKey({ keyId })).keyMetadata;
    const found = key?.versions.find((candidate) => candidate.version === version);
    assert.ok(found, `${keyId} has version ${String(version)}`);
    return found.replicas.map((replica) => replica.applianceId).sort();
  }

  async function tokenLabels(applianceId: string): Promise<string> {
    return succeeded(await runPkcs11Tool(target, applianceId, ['--list-objects', '--type', 'secrkey']), 'pkcs11-tool --list-objects');
  }

  before(async () => {
    target = await startBrokerUnderTest({ reconcileIntervalSeconds: 86_400 });
    client = createBrokerClient({ address: target.address, deadlineMs: 60_000 });
    await client.createKey({ keyId: 'repair/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    await client.rotateKey({ keyId: 'repair/aes' });
    const status = await client.getFleetStatus();
    appliances = status.appliances.map((appliance) => appliance.id).sort();
    const remote = status.appliances.find((appliance) => appliance.zone !== status.localZone);
    assert.ok(remote, 'an appliance outside the local zone');
    damaged = remote.id;
  });

  after(async () => {
    client?.close();
    await target?.dispose();
  });

  it('finds nothing to do on a healthy fleet', async () => {
    assert.equal(
      succeeded(await hsmctl(['fleet', 'resync']), 'fleet resync'),
      'Checked 3 appliances: copied 0 key versions, 0 lost.\n',
    );
    const status = JSON.parse(succeeded(await hsmctl(['fleet', 'status', '--output', 'json']), 'fleet status')) as {
      appliances: { id: string; keysPresent?: number; keysMissing?: number; orphans?: string[]; enrolled?: boolean }[];
    };
    for (const appliance of status.appliances) {
      assert.equal(appliance.keysPresent, 2, `${appliance.id} holds both versions`);
      assert.equal(appliance.keysMissing, undefined, `${appliance.id} misses nothing`);
      assert.equal(appliance.orphans, undefined, `${appliance.id} has no orphans`);
      assert.equal(appliance.enrolled, true, `${appliance.id} is enrolled`);
    }
  });

  it('copies back a key version deleted from an appliance, and reports it lost', async () => {
    assert.match(await tokenLabels(damaged), /label:\s+hsmb:repair\/aes:1$/m);
    succeeded(
      await runPkcs11Tool(target, damaged, ['--delete-object', '--type', 'secrkey', '--label', 'hsmb:repair/aes:1']),
      'pkcs11-tool --delete-object',
    );
    assert.doesNotMatch(await tokenLabels(damaged), /label:\s+hsmb:repair\/aes:1$/m);
    assert.deepEqual(await holdersOf('repair/aes', 1), appliances, 'the registry does not know yet');

    assert.equal(
      succeeded(await hsmctl(['fleet', 'resync', damaged]), 'fleet resync'),
      'Checked 1 appliance: copied 1 key version, 1 lost.\n',
    );
    assert.match(await tokenLabels(damaged), /label:\s+hsmb:repair\/aes:1$/m);
    assert.deepEqual(await holdersOf('repair/aes', 1), appliances);

    // And so does what operators read.
    const describe = succeeded(await hsmctl(['keys', 'describe', 'repair/aes']), 'keys describe');
    assert.match(describe, new RegExp(`^\\s+1\\s+\\S+Z\\s+-\\s+${escape(appliances.join(', '))}\\s+-\\s+\\S+Z$`, 'm'));
  });

  it('reports an object the registry does not know as an orphan, and leaves it in place', async () => {
    succeeded(
      await runPkcs11Tool(target, damaged, ['--keygen', '--key-type', 'AES:32', '--label', 'hsmb:ghost/key:1']),
      'pkcs11-tool --keygen',
    );
    const report = succeeded(await hsmctl(['fleet', 'resync']), 'fleet resync');
    assert.equal(
      report,
      [
        'Checked 3 appliances: copied 0 key versions, 0 lost.',
        `Orphans (reported, never deleted): ${damaged}:hsmb:ghost/key:1`,
        '',
      ].join('\n'),
    );
    const status = succeeded(await hsmctl(['fleet', 'status']), 'fleet status');
    assert.match(status, /^APPLIANCE\s+ZONE\s+STATE\s+.*\s+KEYS\s+MISSING\s+WORKERS\s+RESTARTS$/m);
    assert.match(
      status,
      new RegExp(`^Orphans \\(key objects the registry does not know; reported, never deleted\\):\\n {2}${escape(damaged)}: hsmb:ghost/key:1$`, 'm'),
    );
    assert.match(await tokenLabels(damaged), /label:\s+hsmb:ghost\/key:1$/m, 'the orphan is still there');
    // Every appliance row says nothing is missing.
    for (const id of appliances) {
      assert.match(status, new RegExp(`^${escape(id)}\\s+(\\S+\\s+){9}\\d+\\s+0\\s+\\d+\\s+\\d+$`, 'm'), id);
    }
  });

  it('refuses an unknown appliance with NOT_FOUND', async () => {
    const result = await hsmctl(['fleet', 'resync', 'hsm-nope']);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^hsmctl: NOT_FOUND: .*\[APPLIANCE_NOT_FOUND\]\n$/);
  });
});
