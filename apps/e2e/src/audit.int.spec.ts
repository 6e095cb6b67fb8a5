import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { runHsmctl } from './hsmctl-run.js';
import type { ProcessResult } from './process-run.js';
import { temporaryDirectory } from './temporary-directory.js';

/** Asserts a zero exit and returns stdout as text. */
function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

// The auditor's side of the trail, as an operator runs it: hsmctl in a
// child process searching, tailing and verifying what a real broker wrote.
describe('hsmctl audit against a real broker', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  const hsmctl = (args: readonly string[]): Promise<ProcessResult> => runHsmctl(target.address, args);
  const trailFiles = (): string[] => {
    const folder = join(target.dataDir, 'audit');
    return readdirSync(folder)
      .filter((name) => /^audit\.log(\.\d{12})?$/.test(name))
      .map((name) => join(folder, name));
  };

  before(async () => {
    target = await startBrokerUnderTest();
    succeeded(await hsmctl(['keys', 'create', '--spec', 'AES_256', '--usage', 'ENCRYPT_DECRYPT', '--key-id', 'audit/aes']), 'keys create');
    succeeded(await hsmctl(['encrypt', '--key-id', 'audit/aes', '--data', 'audited secret payload', '--output', 'base64']), 'encrypt');
  });

  after(async () => {
    await target?.dispose();
  });

  it('searches by operation and key, as a table and as the JSON lines of the trail', async () => {
    const lines = succeeded(await hsmctl(['audit', 'search', '--operation', 'Encrypt', '--key-id', 'audit/aes', '--output', 'json']), 'audit search')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { operation: string; keyId: string; keyVersion: number; code: number; appliances: string[] });
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0]?.operation, lines[0]?.keyId, lines[0]?.keyVersion, lines[0]?.code], ['Encrypt', 'audit/aes', 1, 0]);
    assert.equal(lines[0]?.appliances.length, 1);
    const table = succeeded(await hsmctl(['audit', 'search', '--result', 'ok', '--limit', '2']), 'audit search table');
    assert.match(table, /^ *SEQ +TIME +IDENTITY +OPERATION/);
    assert.match(table, /older matches left out/);
    const refused = await hsmctl(['audit', 'search', '--result', 'maybe']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /--result/);
  });

  it('tails the backlog and then live records', async () => {
    const tail = hsmctl(['audit', 'tail', '--operation', 'GenerateRandom', '--backlog', '5', '--count', '2', '--output', 'json']);
    succeeded(await hsmctl(['random', '--bytes', '8', '--output', 'hex']), 'random');
    succeeded(await hsmctl(['random', '--bytes', '8', '--output', 'hex']), 'random');
    const records = succeeded(await tail, 'audit tail')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { operation: string; seq: number });
    assert.deepEqual(records.map((record) => record.operation), ['GenerateRandom', 'GenerateRandom']);
    assert.ok((records[0]?.seq ?? 0) < (records[1]?.seq ?? 0));
  });

  it('verifies the trail offline against the pinned signing key, and reports a removed record with its place', async () => {
    await target.broker.audit.checkpoint();
    const status = JSON.parse(succeeded(await hsmctl(['audit', 'status', '--output', 'json']), 'audit status')) as { signingKeyFingerprint: string; lastCheckpointSeq: number };
    assert.match(status.signingKeyFingerprint, /^[0-9a-f]{64}$/);
    assert.ok(status.lastCheckpointSeq > 0);
    const files = trailFiles();
    const verified = await hsmctl(['audit', 'verify', ...files, '--key-fingerprint', status.signingKeyFingerprint]);
    assert.match(succeeded(verified, 'audit verify'), /^OK: \d+ records and 1 checkpoints/m);

    await using scratch = temporaryDirectory();
    const copy = join(scratch.path, 'audit.log');
    const lines = readFileSync(join(target.dataDir, 'audit', 'audit.log'), 'utf8').split('\n');
    lines.splice(2, 1);
    writeFileSync(copy, lines.join('\n'));
    const tampered = await hsmctl(['audit', 'verify', copy]);
    assert.equal(tampered.status, 3, tampered.stderr);
    assert.match(tampered.stdout.toString('utf8'), new RegExp(`^REMOVED  ${copy.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3  seq 3 is missing`, 'm'));
    const otherKey = await hsmctl(['audit', 'verify', ...files, '--key-fingerprint', 'ab'.repeat(32)]);
    assert.equal(otherKey.status, 3);
    assert.match(otherKey.stdout.toString('utf8'), /^WRONG-KEY /m);
  });
});
