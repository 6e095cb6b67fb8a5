// The byte format of the worker pipe. Every frame is
//
//   u32 length (of what follows) | u32 call id | u8 code | payload
//
// A request's code is its operation's number in the catalog and its payload
// the arguments as tagged values in the catalog's field order (no key names
// on the wire). A response's code is `responseOk` or `responseError`, its
// payload one tagged value: the result, or the serialized BrokerError.
// Tagged values cover what the operations carry: undefined, null, booleans,
// numbers, strings, bytes (Buffers), arrays and plain objects.

/** Bytes before a frame's payload: length, id, code. */
export const frameHeaderBytes = 9;
/** Largest frame either side accepts; a longer length prefix means a corrupt stream. */
export const maxFrameBytes = 64 * 1024 * 1024;
/** Response code of a result. */
export const responseOk = 0;
/** Response code of an error. */
export const responseError = 1;

const enum Tag {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Int32 = 4,
  Float64 = 5,
  String = 6,
  Bytes = 7,
  Array = 8,
  Object = 9,
}

const initialBytes = 16 * 1024;
const maxKeptBytes = 1024 * 1024;

/**
 * Encodes frames into one reused, growing buffer. `take()` hands a copy of
 * the bytes written so far to the caller (for one socket write) and starts
 * over, so a turn's frames cost one small allocation and one write however
 * many there are.
 */
export class FrameWriter {
  #buffer = Buffer.allocUnsafe(initialBytes);
  #offset = 0;
  #frameStart = -1;

  /** Bytes waiting to be taken. */
  get pending(): number {
    return this.#offset;
  }

  /** Starts a frame; follow with values and {@link endFrame}. */
  beginFrame(id: number, code: number): void {
    this.#ensure(frameHeaderBytes);
    this.#frameStart = this.#offset;
    this.#buffer.writeUInt32LE(id >>> 0, this.#offset + 4);
    this.#buffer.writeUInt8(code, this.#offset + 8);
    this.#offset += frameHeaderBytes;
  }

  /** Closes the frame begun last by writing its length prefix. */
  endFrame(): void {
    this.#buffer.writeUInt32LE(this.#offset - this.#frameStart - 4, this.#frameStart);
    this.#frameStart = -1;
  }

  /** Drops a frame begun but not ended (its value could not be encoded). */
  abandonFrame(): void {
    if (this.#frameStart === -1) return;
    this.#offset = this.#frameStart;
    this.#frameStart = -1;
  }

  /** Appends one tagged value. Throws on values the format has no tag for (functions, symbols, class instances other than Buffer). */
  value(value: unknown): void {
    switch (typeof value) {
      case 'undefined':
        this.#tag(Tag.Undefined);
        return;
      case 'boolean':
        this.#tag(value ? Tag.True : Tag.False);
        return;
      case 'number':
        if (Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff) {
          this.#ensure(5);
          this.#buffer.writeUInt8(Tag.Int32, this.#offset);
          this.#buffer.writeInt32LE(value, this.#offset + 1);
          this.#offset += 5;
        } else {
          this.#ensure(9);
          this.#buffer.writeUInt8(Tag.Float64, this.#offset);
          this.#buffer.writeDoubleLE(value, this.#offset + 1);
          this.#offset += 9;
        }
        return;
      case 'string': {
        const length = Buffer.byteLength(value);
        this.#ensure(5 + length);
        this.#buffer.writeUInt8(Tag.String, this.#offset);
        this.#buffer.writeUInt32LE(length, this.#offset + 1);
        this.#buffer.write(value, this.#offset + 5, length, 'utf8');
        this.#offset += 5 + length;
        return;
      }
      case 'object':
        this.#object(value);
        return;
      case 'bigint':
      case 'function':
      case 'symbol':
        throw new TypeError(`worker wire cannot carry a ${typeof value}`);
    }
  }

  #object(value: object | null): void {
    if (value === null) {
      this.#tag(Tag.Null);
    } else if (value instanceof Uint8Array) {
      this.#ensure(5 + value.length);
      this.#buffer.writeUInt8(Tag.Bytes, this.#offset);
      this.#buffer.writeUInt32LE(value.length, this.#offset + 1);
      this.#buffer.set(value, this.#offset + 5);
      this.#offset += 5 + value.length;
    } else if (Array.isArray(value)) {
      this.#ensure(5);
      this.#buffer.writeUInt8(Tag.Array, this.#offset);
      this.#buffer.writeUInt32LE(value.length, this.#offset + 1);
      this.#offset += 5;
      for (const item of value) this.value(item);
    } else {
      const prototype: unknown = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) throw new TypeError('worker wire carries plain objects only');
      const keys = Object.keys(value);
      this.#ensure(5);
      this.#buffer.writeUInt8(Tag.Object, this.#offset);
      this.#buffer.writeUInt32LE(keys.length, this.#offset + 1);
      this.#offset += 5;
      for (const key of keys) {
        this.value(key);
        this.value((value as Record<string, unknown>)[key]);
      }
    }
  }

  /** The frames written since the last take, as one buffer of their own; the writer starts over. */
  take(): Buffer {
    // A copy: the socket may hold the bytes until the kernel takes them.
    const taken = Buffer.from(this.#buffer.subarray(0, this.#offset));
    // A buffer grown for one large frame is not kept.
    if (this.#buffer.length > maxKeptBytes) this.#buffer = Buffer.allocUnsafe(initialBytes);
    this.#offset = 0;
    return taken;
  }

  #tag(tag: Tag): void {
    this.#ensure(1);
    this.#buffer.writeUInt8(tag, this.#offset);
    this.#offset += 1;
  }

  #ensure(bytes: number): void {
    if (this.#offset + bytes <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.#offset + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buffer.copy(grown, 0, 0, this.#offset);
    this.#buffer = grown;
  }
}

/** Reads tagged values from one frame's payload. Bytes come back as copies, so no value pins the read chunk. */
export class ValueReader {
  readonly #buffer: Buffer;
  #offset: number;
  readonly #end: number;

  constructor(buffer: Buffer, offset: number, end: number) {
    this.#buffer = buffer;
    this.#offset = offset;
    this.#end = end;
  }

  /** Whether every byte of the payload was read. */
  get done(): boolean {
    return this.#offset >= this.#end;
  }

  /** The next value. Throws RangeError on a truncated or unknown encoding. */
  value(): unknown {
    const tag = this.#u8();
    switch (tag as Tag) {
      case Tag.Undefined:
        return undefined;
      case Tag.Null:
        return null;
      case Tag.False:
        return false;
      case Tag.True:
        return true;
      case Tag.Int32: {
        this.#need(4);
        const value = this.#buffer.readInt32LE(this.#offset);
        this.#offset += 4;
        return value;
      }
      case Tag.Float64: {
        this.#need(8);
        const value = this.#buffer.readDoubleLE(this.#offset);
        this.#offset += 8;
        return value;
      }
      case Tag.String: {
        const length = this.#u32();
        this.#need(length);
        const value = this.#buffer.toString('utf8', this.#offset, this.#offset + length);
        this.#offset += length;
        return value;
      }
      case Tag.Bytes: {
        const length = this.#u32();
        this.#need(length);
        const value = Buffer.from(this.#buffer.subarray(this.#offset, this.#offset + length));
        this.#offset += length;
        return value;
      }
      case Tag.Array: {
        const count = this.#u32();
        const items: unknown[] = [];
        for (let i = 0; i < count; i++) items.push(this.value());
        return items;
      }
      case Tag.Object: {
        const count = this.#u32();
        const object: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) {
          const key = this.value();
          if (typeof key !== 'string') throw new RangeError('worker wire: object key is not a string');
          object[key] = this.value();
        }
        return object;
      }
      default:
        throw new RangeError(`worker wire: unknown tag ${String(tag)}`);
    }
  }

  #need(bytes: number): void {
    if (this.#offset + bytes > this.#end) throw new RangeError('worker wire: value runs past its frame');
  }

  #u8(): number {
    this.#need(1);
    return this.#buffer.readUInt8(this.#offset++);
  }

  #u32(): number {
    this.#need(4);
    const value = this.#buffer.readUInt32LE(this.#offset);
    this.#offset += 4;
    return value;
  }
}

/** Called for each whole frame; `payload` is valid only during the call. */
export type FrameListener = (id: number, code: number, payload: ValueReader) => void;

/**
 * Cuts a byte stream into frames, whatever the chunking: a frame split over
 * several reads is held until it is whole, and one read carrying many frames
 * yields them all in order.
 */
export class FrameReader {
  readonly #onFrame: FrameListener;
  #held: Buffer | undefined;

  constructor(onFrame: FrameListener) {
    this.#onFrame = onFrame;
  }

  /** Feeds bytes read from the stream. Throws RangeError on a corrupt length prefix. */
  push(chunk: Buffer): void {
    let buffer = chunk;
    if (this.#held) {
      buffer = Buffer.concat([this.#held, chunk]);
      this.#held = undefined;
    }
    let offset = 0;
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32LE(offset);
      if (length < frameHeaderBytes - 4 || length > maxFrameBytes) throw new RangeError(`worker wire: frame length ${String(length)} out of range`);
      const end = offset + 4 + length;
      if (end > buffer.length) break;
      this.#onFrame(buffer.readUInt32LE(offset + 4), buffer.readUInt8(offset + 8), new ValueReader(buffer, offset + frameHeaderBytes, end));
      offset = end;
    }
    if (offset < buffer.length) this.#held = Buffer.from(buffer.subarray(offset));
  }
}

/** Something frames can be written to, once per flush (a socket). */
export interface FrameSink {
  write(bytes: Buffer): unknown;
}

/**
 * Frames queued during one event-loop turn go out in one write: the first
 * frame of a turn schedules the flush with setImmediate, which runs after the
 * loop has read all pending I/O, so every call received in that read is
 * answered (or sent) together.
 */
export class CoalescingFrameWriter {
  readonly frames = new FrameWriter();
  readonly #sink: FrameSink;
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.frames.pending > 0) this.#sink.write(this.frames.take());
  };

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  /** Schedules the flush of frames written to {@link frames} (once per turn). */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }
}
