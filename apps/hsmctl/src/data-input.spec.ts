import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import { parseCommandLine, UsageError } from './command-line.js';
import type { CliIo } from './command.js';
import { dataInputOptions, readDataInput, readFileOrBase64 } from './data-input.js';

function io(stdin: string, stdinIsTTY = false): CliIo {
  return {
    stdin: Object.assign(Readable.from([Buffer.from(stdin)]), { isTTY: stdinIsTTY }),
    stdout: new Writable(),
    stderr: new Writable(),
    env: {},
  };
}

function read(args: string[], streams: CliIo): Promise<Buffer> {
  return readDataInput(parseCommandLine(args, dataInputOptions).options, streams);
}

describe('data input', () => {
  let directory = '';
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'hsmctl-in-'));
    await writeFile(join(directory, 'input.bin'), Buffer.from([1, 2, 3]));
    await writeFile(join(directory, 'sig.der'), Buffer.from([0x30, 0x02]));
  });
  after(() => rm(directory, { recursive: true, force: true }));

  it('reads --data as UTF-8 and --data-base64 as bytes', async () => {
    assert.deepEqual(await read(['--data', 'héllo'], io('')), Buffer.from('héllo', 'utf8'));
    assert.deepEqual(await read(['--data-base64', 'AQID'], io('')), Buffer.from([1, 2, 3]));
  });

  it('reads --in FILE, and stdin for --in - or no option', async () => {
    assert.deepEqual(await read(['--in', join(directory, 'input.bin')], io('')), Buffer.from([1, 2, 3]));
    assert.deepEqual(await read(['--in', '-'], io('piped')), Buffer.from('piped'));
    assert.deepEqual(await read([], io('piped')), Buffer.from('piped'));
  });

  it('refuses two sources at once', async () => {
    await assert.rejects(
      read(['--data', 'a', '--data-base64', 'Yg=='], io('')),
      (error: unknown) => error instanceof UsageError && error.message === 'give only one of --data, --data-base64',
    );
  });

  it('does not wait on a terminal when no input was given', async () => {
    await assert.rejects(read([], io('', true)), /no input/);
    assert.deepEqual(await read(['--in', '-'], io('typed', true)), Buffer.from('typed'));
  });

  it('names the option when a file cannot be read', async () => {
    await assert.rejects(
      read(['--in', join(directory, 'missing')], io('')),
      (error: unknown) => error instanceof BrokerError && /^--in: cannot read '.*missing' \(ENOENT\)$/.test(error.message),
    );
  });

  it('takes FILE_OR_B64 arguments as a file when one exists, else as base64', async () => {
    assert.deepEqual(await readFileOrBase64(join(directory, 'sig.der'), '--signature'), Buffer.from([0x30, 0x02]));
    assert.deepEqual(await readFileOrBase64('MAI=', '--signature'), Buffer.from([0x30, 0x02]));
    await assert.rejects(
      readFileOrBase64('no-such-file.der', '--signature'),
      /--signature: 'no-such-file.der' is neither a readable file nor valid base64/,
    );
  });
});
