import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoalescingFrameWriter, FrameReader, FrameWriter } from './worker-wire.js';

interface Frame {
  id: number;
  code: number;
  values: unknown[];
}

function collect(count: number): { reader: FrameReader; frames: Frame[] } {
  const frames: Frame[] = [];
  const reader = new FrameReader((id, code, payload) => {
    const values: unknown[] = [];
    for (let i = 0; i < count; i++) values.push(payload.value());
    assert.equal(payload.done, true, 'the payload holds exactly the values written');
    frames.push({ id, code, values });
  });
  return { reader, frames };
}

const sample = {
  label: 'key-1/v2',
  digest: Buffer.from('00ff7f80', 'hex'),
  nested: [{ objectClass: 'private', bits: 2048 }, null, undefined, true, false],
  negative: -5,
  fraction: 1.5,
  large: 2 ** 40,
  unicode: 'zoë ✓',
};

describe('worker wire frames', () => {
  it('carries every value type the operations use, Buffers as Buffers', () => {
    const writer = new FrameWriter();
    writer.beginFrame(7, 13);
    writer.value(sample);
    writer.value(Buffer.alloc(0));
    writer.endFrame();
    const { reader, frames } = collect(2);
    reader.push(writer.take());
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.id, 7);
    assert.equal(frames[0]?.code, 13);
    const [value, empty]: unknown[] = frames[0]?.values ?? [];
    assert.deepEqual(value, sample);
    assert.ok(Buffer.isBuffer(Reflect.get(value, 'digest')));
    assert.deepEqual(empty, Buffer.alloc(0));
  });

  it('reassembles frames split at every byte and yields frames coalesced in one chunk', () => {
    const writer = new FrameWriter();
    for (let id = 1; id <= 50; id++) {
      writer.beginFrame(id, 2);
      writer.value(Buffer.alloc(id * 37, id));
      writer.endFrame();
    }
    const bytes = writer.take();
    const whole = collect(1);
    whole.reader.push(bytes);
    assert.equal(whole.frames.length, 50, 'one chunk, fifty frames');
    const split = collect(1);
    for (let i = 0; i < bytes.length; i++) split.reader.push(bytes.subarray(i, i + 1));
    assert.deepEqual(split.frames, whole.frames);
    assert.deepEqual(split.frames.map((frame) => frame.id), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual(split.frames[49]?.values[0], Buffer.alloc(50 * 37, 50));
  });

  it('grows past its first buffer and starts afresh after take', () => {
    const writer = new FrameWriter();
    writer.beginFrame(1, 1);
    writer.value(Buffer.alloc(100_000, 1));
    writer.endFrame();
    assert.ok(writer.pending > 100_000);
    const { reader, frames } = collect(1);
    reader.push(writer.take());
    assert.equal(writer.pending, 0);
    assert.deepEqual(frames[0]?.values[0], Buffer.alloc(100_000, 1));
  });

  it('drops an abandoned frame and refuses values it has no tag for', () => {
    const writer = new FrameWriter();
    writer.beginFrame(1, 1);
    assert.throws(() => writer.value(() => 1), /cannot carry a function/u);
    writer.abandonFrame();
    assert.throws(() => writer.value(new Map()), /plain objects only/u);
    writer.abandonFrame();
    writer.beginFrame(2, 1);
    writer.value('ok');
    writer.endFrame();
    const { reader, frames } = collect(1);
    reader.push(writer.take());
    assert.deepEqual(frames, [{ id: 2, code: 1, values: ['ok'] }]);
  });

  it('rejects a corrupt length prefix and a value running past its frame', () => {
    const { reader } = collect(1);
    assert.throws(() => reader.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0])), /frame length/u);
    const writer = new FrameWriter();
    writer.beginFrame(1, 1);
    writer.endFrame();
    const reading = collect(1);
    assert.throws(() => reading.reader.push(writer.take()), /runs past its frame/u);
  });

  it('writes the frames of one event-loop turn in one write', async () => {
    const writes: Buffer[] = [];
    const out = new CoalescingFrameWriter({ write: (bytes) => writes.push(Buffer.from(bytes)) });
    for (let id = 1; id <= 20; id++) {
      out.frames.beginFrame(id, 1);
      out.frames.value(id);
      out.frames.endFrame();
      out.schedule();
    }
    assert.equal(writes.length, 0, 'nothing is written before the turn ends');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 1);
    const { reader, frames } = collect(1);
    reader.push(writes[0] ?? Buffer.alloc(0));
    assert.equal(frames.length, 20);
  });
});
