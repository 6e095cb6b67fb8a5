import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { UsageError, parseCommandLine } from './command-line.js';
import {
  binaryFormats,
  defaultBinaryFormat,
  encodeByteResult,
  encodeBytes,
  encodeJson,
  encodeText,
  outFileOption,
  parseOutputFormat,
  resolveOutputTarget,
  writeOutput,
} from './output-format.js';

const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80]);

describe('output encodings', () => {
  it('writes raw bytes untouched and text forms with one newline', () => {
    assert.deepEqual(encodeBytes(bytes, 'raw'), bytes);
    assert.equal(encodeBytes(bytes, 'base64').toString(), 'AP8QgA==\n');
    assert.equal(encodeBytes(bytes, 'hex').toString(), '00ff1080\n');
  });

  it('encodes a view into a larger buffer without its neighbours', () => {
    const backing = Buffer.from([1, 2, 3, 4, 5]);
    assert.equal(encodeBytes(backing.subarray(1, 3), 'hex').toString(), '0203\n');
  });

  it('pretty-prints JSON and ends text with exactly one newline', () => {
    assert.equal(encodeJson({ a: 1 }).toString(), '{\n  "a": 1\n}\n');
    assert.equal(encodeText('valid').toString(), 'valid\n');
    assert.equal(encodeText('table\n').toString(), 'table\n');
  });

  it('renders a byte result as the response JSON when asked for json', () => {
    assert.equal(encodeByteResult('json', bytes, () => ({ mac: 'AP8QgA==' })).toString(), '{\n  "mac": "AP8QgA=="\n}\n');
    assert.equal(encodeByteResult('base64', bytes, () => assert.fail('not called')).toString(), 'AP8QgA==\n');
    assert.throws(() => encodeByteResult('pem', bytes, () => null), /does not apply/);
  });
});

describe('output format choice', () => {
  it('accepts allowed formats case-insensitively and rejects others with the list', () => {
    assert.equal(parseOutputFormat('JSON', binaryFormats, 'raw'), 'json');
    assert.equal(parseOutputFormat(undefined, binaryFormats, 'raw'), 'raw');
    assert.throws(
      () => parseOutputFormat('pem', binaryFormats, 'raw'),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message === "--output: unknown format 'pem'; allowed: raw, base64, hex, json",
    );
  });

  it('defaults bytes to base64 on a terminal and raw for pipes and files', () => {
    assert.equal(defaultBinaryFormat({ outFile: undefined, stdoutIsTTY: true }), 'base64');
    assert.equal(defaultBinaryFormat({ outFile: undefined, stdoutIsTTY: false }), 'raw');
    assert.equal(defaultBinaryFormat({ outFile: 'ct.bin', stdoutIsTTY: true }), 'raw');
  });

  it('resolves --output and --out together', () => {
    const options = { output: { type: 'string', description: '' }, ...outFileOption } as const;
    const tty = resolveOutputTarget(parseCommandLine([], options).options, binaryFormats, 'bytes', true);
    assert.deepEqual(tty, { format: 'base64', outFile: undefined });
    const file = resolveOutputTarget(parseCommandLine(['--out', 'x'], options).options, binaryFormats, 'bytes', true);
    assert.deepEqual(file, { format: 'raw', outFile: 'x' });
    const explicit = resolveOutputTarget(
      parseCommandLine(['--out', 'x', '--output', 'hex'], options).options,
      binaryFormats,
      'bytes',
      false,
    );
    assert.deepEqual(explicit, { format: 'hex', outFile: 'x' });
  });
});

describe('writeOutput', () => {
  it('writes to the stream when there is no file', async () => {
    const chunks: Buffer[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    await writeOutput(stream, undefined, bytes);
    await writeOutput(stream, '-', bytes);
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([bytes, bytes]));
  });

  it('creates files readable by the owner only', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'hsmctl-out-'));
    try {
      const path = join(directory, 'result.bin');
      await writeOutput(new Writable(), path, bytes);
      assert.deepEqual(await readFile(path), bytes);
      if (process.platform !== 'win32') assert.equal((await stat(path)).mode & 0o777, 0o600);
      await assert.rejects(writeOutput(new Writable(), join(directory, 'no', 'such', 'dir'), bytes), /--out: cannot write/);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
