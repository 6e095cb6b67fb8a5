import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createBrokerClient, KeySpec, KeyUsage, type BackupProgress, type BrokerClient } from '@hsm-broker/client';
import { BrokerError, Code, codeName } from '@hsm-broker/errors';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { runHsmctl } from './hsmctl-run.js';
import type { ProcessResult } from './process-run.js';
import { temporaryDirectory, type TemporaryDirectory } from './temporary-directory.js';

// Backups through hsmctl and the client library against a real broker (its
// embedded backup HSM): the file hsmctl writes, and what restore refuses
// before changing anything (a damaged file, a truncated one, a fleet that
// already holds the keys). Restoring into a fleet that lost every token is
// the broker's own durability suite's business.

/** Asserts a zero exit and returns stdout as text. */
function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

/** Asserts exit status 1, nothing on stdout, and returns stderr without progress lines. */
function failed(result: ProcessResult, what: string): string {
  assert.equal(result.status, 1, `${what} exited ${String(result.status)}: ${result.stderr}`);
  assert.equal(result.stdout.length, 0, what);
  return result.stderr.replace(/^Restore: .*\n/gm, '');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('backups through hsmctl', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  let client: BrokerClient;
  let dir: TemporaryDirectory;
  let backupFile: string;
  const hsmctl = (args: readonly string[]): Promise<ProcessResult> => runHsmctl(target.address, args, { timeoutMs: 600_000 });

  /** Key ids and primary versions: what a refused restore must leave exactly as it was. */
  async function registry(): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of client.listAllKeys()) keys.push(`${key.keyId}@${String(key.primaryVersion)}`);
    return keys.sort();
  }

  before(async () => {
    target = await startBrokerUnderTest();
    dir = temporaryDirectory();
    backupFile = dir.file('fleet.hsmb');
    client = createBrokerClient({ address: target.address, deadlineMs: 60_000 });
    await client.createKey({ keyId: 'backup/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    await client.rotateKey({ keyId: 'backup/aes' });
    await client.createKey({ keyId: 'backup/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY });
  });

  after(async () => {
    client?.close();
    await dir?.[Symbol.asyncDispose]();
    await target?.dispose();
  });

  it('writes the backup to a new file with mode 0600, reporting progress on stderr', async () => {
    const result = await hsmctl(['backup', 'create', '--out', backupFile]);
    const text = succeeded(result, 'backup create');
    const file = readFileSync(backupFile);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir.path), ['fleet.hsmb'], 'no temporary file is left');
    assert.match(
      text,
      new RegExp(
        `^Wrote ${backupFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 2 keys, 3 key versions, ${String(file.length)} bytes\\.\\n` +
          `SHA-256: +${sha256(file)}\\n` +
          'Created: +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\n' +
          'Backup key: +\\S+\\n$',
      ),
    );
    // stderr is a pipe here, not a terminal: one line per stage, no carriage returns.
    assert.doesNotMatch(result.stderr, /\r/);
    assert.match(result.stderr, /^Backup: wrapping \d+\/3 \(\d+%\)$/m);
    const stages = result.stderr.split('\n').filter((line) => line !== '').map((line) => /^Backup: (\S+)/.exec(line)?.[1]);
    assert.equal(new Set(stages).size, stages.length, `one line per stage: ${result.stderr}`);
  });

  it('refuses to overwrite the file unless --force', async () => {
    const before = readFileSync(backupFile);
    const refused = await hsmctl(['backup', 'create', '--out', backupFile]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.equal(
      refused.stderr,
      `hsmctl: ALREADY_EXISTS: --out: '${backupFile}' already exists; give --force to replace it [OUTPUT_EXISTS]\n`,
    );
    assert.deepEqual(readFileSync(backupFile), before);

    const forced = JSON.parse(
      succeeded(await hsmctl(['backup', 'create', '--out', backupFile, '--force', '--output', 'json']), 'backup create --force'),
    ) as { file: string; bytes: number; keys: number; keyVersions: number; sha256: string };
    const after = readFileSync(backupFile);
    assert.equal(forced.file, backupFile);
    assert.equal(forced.bytes, after.length);
    assert.equal(forced.keys, 2);
    assert.equal(forced.keyVersions, 3);
    assert.equal(forced.sha256, sha256(after));
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir.path), ['fleet.hsmb']);
  });

  it('refuses a damaged and a truncated backup with INVALID_ARGUMENT, changing nothing', async () => {
    const keysBefore = await registry();
    const file = readFileSync(backupFile);
    const flipped = Buffer.from(file);
    const middle = Math.floor(flipped.length / 2);
    flipped[middle] = (flipped[middle] ?? 0) ^ 0x01;
    writeFileSync(dir.file('flipped.hsmb'), flipped);
    writeFileSync(dir.file('truncated.hsmb'), file.subarray(0, file.length - 100));

    for (const name of ['flipped.hsmb', 'truncated.hsmb']) {
      const stderr = failed(await hsmctl(['backup', 'restore', dir.file(name)]), `backup restore ${name}`);
      assert.match(stderr, /^hsmctl: INVALID_ARGUMENT: backup: .*nothing was restored \[INVALID_BACKUP\]\n$/, name);
    }
    assert.deepEqual(await registry(), keysBefore);
  });

  it('refuses to restore into the fleet the backup came from with ALREADY_EXISTS', async () => {
    const keysBefore = await registry();
    const stderr = failed(await hsmctl(['backup', 'restore', backupFile]), 'backup restore');
    assert.match(stderr, /^hsmctl: ALREADY_EXISTS: backup: keys already exist in this fleet \(.*backup\/aes.*\).*\[KEY_EXISTS\]\n$/);
    assert.deepEqual(await registry(), keysBefore);
    // The keys still work.
    const sealed = await client.encrypt({ keyId: 'backup/aes', plaintext: Buffer.from('still here') });
    assert.equal(Buffer.from((await client.decrypt({ ciphertext: sealed.ciphertext })).plaintext).toString(), 'still here');
  });

  it('refuses a file that is missing, before calling the broker', async () => {
    const stderr = failed(await hsmctl(['backup', 'restore', dir.file('absent.hsmb')]), 'backup restore');
    assert.match(stderr, /^hsmctl: INVALID_ARGUMENT: FILE: cannot read '.*absent\.hsmb' \(ENOENT\) \[INPUT_UNREADABLE\]\n$/);
  });

  it('hands the client the whole file, checked against the summary, with progress in order', async () => {
    const progress: BackupProgress[] = [];
    const { backup, summary } = await client.createBackup({ onProgress: (event) => progress.push(event) });
    assert.equal(summary.sha256, sha256(backup));
    assert.equal(summary.keys, 2);
    assert.equal(summary.keyVersions, 3);
    assert.ok(summary.backupKeyId !== '');
    assert.ok(Math.abs((summary.createdAt?.getTime() ?? 0) - Date.now()) < 60_000);
    const wrapping = progress.filter((event) => event.stage === 'wrapping');
    assert.deepEqual(
      wrapping.map((event) => event.done),
      [1, 2, 3],
    );
    assert.ok(wrapping.every((event) => event.total === 3));

    await assert.rejects(client.restoreBackup(backup.subarray(0, 10)), (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(codeName(error.code), codeName(Code.INVALID_ARGUMENT));
      assert.equal(error.reason, 'INVALID_BACKUP');
      return true;
    });
  });
});
