import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { AtomicFile } from './atomic-file.js';

const directory = mkdtempSync(join(tmpdir(), 'hsmctl-atomic-'));

function failsWith(code: Code, reason: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof BrokerError, String(error));
    assert.equal(Code[error.code], Code[code]);
    assert.equal(error.reason, reason);
    return true;
  };
}

describe('AtomicFile', () => {
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('writes the file with mode 0600 and leaves no temporary file', async () => {
    const path = join(directory, 'new.bin');
    const file = await AtomicFile.create(path, { overwrite: false, flag: '--out' });
    assert.ok(readdirSync(directory).some((name) => name.startsWith('.new.bin.')), 'the temporary file exists early');
    await file.commit(Buffer.from('payload'));
    assert.equal(readFileSync(path, 'utf8'), 'payload');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(directory).filter((name) => name.includes('new.bin')), ['new.bin']);
  });

  it('refuses an existing file unless told to replace it', async () => {
    const path = join(directory, 'existing.bin');
    writeFileSync(path, 'old', { mode: 0o644 });
    await assert.rejects(
      AtomicFile.create(path, { overwrite: false, flag: '--out' }),
      failsWith(Code.ALREADY_EXISTS, 'OUTPUT_EXISTS'),
    );
    const file = await AtomicFile.create(path, { overwrite: true, flag: '--out' });
    await file.commit(Buffer.from('new'));
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.equal(statSync(path).mode & 0o777, 0o600, 'the replacement has mode 0600, not the old mode');
  });

  it('does not replace a file that appeared while it was being written', async () => {
    const path = join(directory, 'raced.bin');
    const file = await AtomicFile.create(path, { overwrite: false, flag: '--out' });
    writeFileSync(path, 'theirs');
    await assert.rejects(file.commit(Buffer.from('ours')), failsWith(Code.ALREADY_EXISTS, 'OUTPUT_EXISTS'));
    assert.equal(readFileSync(path, 'utf8'), 'theirs');
    assert.deepEqual(readdirSync(directory).filter((name) => name.includes('raced.bin')), ['raced.bin']);
  });

  it('leaves nothing behind when discarded', async () => {
    const path = join(directory, 'discarded.bin');
    const file = await AtomicFile.create(path, { overwrite: false, flag: '--out' });
    await file.discard();
    await file.discard();
    assert.deepEqual(readdirSync(directory).filter((name) => name.includes('discarded.bin')), []);
    await assert.rejects(file.commit(Buffer.from('x')), /already committed or discarded/);
  });

  it('names the option and the reason when the directory cannot be written', async () => {
    await assert.rejects(
      AtomicFile.create(join(directory, 'no-such-dir', 'x.bin'), { overwrite: false, flag: '--out' }),
      (error: unknown) =>
        failsWith(Code.INVALID_ARGUMENT, 'OUTPUT_UNWRITABLE')(error) &&
        /^--out: cannot write '.*x\.bin' \(ENOENT\)$/.test((error as Error).message),
    );
  });
});
