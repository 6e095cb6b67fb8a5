import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { describeProgress, ProgressLine } from './progress-line.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return Object.assign(stream, { isTTY, text: () => chunks.join('') });
}

const events = [
  { stage: 'preparing', done: 0, total: 1 },
  { stage: 'wrapping', done: 1, total: 3 },
  { stage: 'wrapping', done: 2, total: 3 },
  { stage: 'wrapping', done: 3, total: 3 },
  { stage: 'sealing', done: 1, total: 1 },
];

describe('ProgressLine', () => {
  it('redraws one line in place on a terminal and ends it when finished', () => {
    const stderr = sink(true);
    const line = new ProgressLine(stderr, 'Backup');
    for (const event of events.slice(1, 3)) line.update(event);
    line.finish();
    line.finish();
    assert.equal(
      stderr.text(),
      '\rBackup: wrapping 1/3 (33%)\u001b[K\rBackup: wrapping 2/3 (66%)\u001b[K\n',
    );
  });

  it('writes one line per stage elsewhere', () => {
    const stderr = sink(false);
    const line = new ProgressLine(stderr, 'Backup');
    for (const event of events) line.update(event);
    line.finish();
    assert.equal(
      stderr.text(),
      ['Backup: preparing 0/1 (0%)', 'Backup: wrapping 1/3 (33%)', 'Backup: sealing 1/1 (100%)', ''].join('\n'),
    );
  });

  it('writes nothing when there was no progress', () => {
    const stderr = sink(true);
    new ProgressLine(stderr, 'Backup').finish();
    assert.equal(stderr.text(), '');
  });
});

describe('describeProgress', () => {
  it('shows counts and a percentage, or just the stage without a total', () => {
    assert.equal(describeProgress({ stage: 'restoring', done: 5, total: 8 }), 'restoring 5/8 (62%)');
    assert.equal(describeProgress({ stage: 'verifying', done: 0, total: 0 }), 'verifying');
    assert.equal(describeProgress({ stage: '', done: 0, total: 0 }), 'working');
    assert.equal(describeProgress({ stage: 'x\u001b[2J', done: 9, total: 4 }), 'x?[2J 9/4 (100%)');
  });
});
