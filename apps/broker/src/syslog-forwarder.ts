import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import type { SyslogCollectorSettings } from './audit-config.js';
import type { Logger } from './logger.js';

/** How forwarding to one collector fares, for GetAuditStatus. */
export interface SyslogCollectorState {
  address: string;
  tls: boolean;
  connected: boolean;
  sentTotal: number;
  bufferedBytes: number;
  droppedTotal: number;
  lastError: string;
}

/** Bytes queued in the socket before new frames go to the disk buffer instead. */
const socketHighWater = 1024 * 1024;
/** Frames read back from the disk buffer per write. */
const drainChunk = 256 * 1024;
const reconnectInitialMs = 200;
const reconnectMaxMs = 5000;

/** Length of the whole frames at the start of `chunk` (octet-counted: `LEN SP MSG`). */
function wholeFrames(chunk: Buffer): { bytes: number; frames: number } {
  let offset = 0;
  let frames = 0;
  for (;;) {
    const space = chunk.indexOf(0x20, offset);
    if (space < 0 || space - offset > 10) break;
    const end = space + 1 + Number(chunk.subarray(offset, space).toString('ascii'));
    if (end > chunk.length) break;
    offset = end;
    frames++;
  }
  return { bytes: offset, frames };
}

/**
 * Forwards audit records to one RFC 5424 collector over TCP (optionally
 * TLS). Sending never waits: while the collector is unreachable or slow,
 * frames go to a buffer file on disk, up to a bound; once it is back the
 * buffer drains in order before live records resume. What does not fit is
 * dropped, counted and logged. TCP syslog has no acknowledgements, so
 * frames in flight when a connection breaks can still be lost.
 */
export class SyslogForwarder {
  readonly #settings: SyslogCollectorSettings;
  readonly #log: Logger;
  readonly #bufferFd: number;
  #bufferSize: number;
  #readOffset = 0;
  #socket: Socket | undefined;
  #connected = false;
  #draining = false;
  #stopped = false;
  #delayMs = reconnectInitialMs;
  #timer: NodeJS.Timeout | undefined;
  #sent = 0;
  #dropped = 0;
  #lastError = '';

  constructor(settings: SyslogCollectorSettings, bufferDir: string, log: Logger) {
    this.#settings = settings;
    this.#log = log;
    mkdirSync(bufferDir, { recursive: true, mode: 0o700 });
    // One buffer per collector address: adding a collector leaves the others' buffers alone.
    const file = join(bufferDir, `${settings.address.replace(/[^A-Za-z0-9.-]/g, '_')}.buffer`);
    this.#bufferFd = openSync(file, 'a+', 0o600);
    this.#bufferSize = fstatSync(this.#bufferFd).size;
    // A frame cut short by a crash is not sent: keep only whole frames.
    const whole = wholeFrames(this.#bufferSize > 0 ? readFileSync(file) : Buffer.alloc(0)).bytes;
    if (whole < this.#bufferSize) {
      ftruncateSync(this.#bufferFd, whole);
      this.#bufferSize = whole;
    }
    this.#connect();
  }

  /** Queues one octet-counted frame; never blocks and never throws. */
  send(frame: Buffer): void {
    if (this.#stopped) return;
    const socket = this.#socket;
    if (socket && this.#connected && !this.#draining && this.#bufferSize === 0 && socket.writableLength < socketHighWater) {
      socket.write(frame);
      this.#sent++;
      return;
    }
    this.#buffer(frame);
    if (this.#connected) void this.#drain();
  }

  /** Where forwarding stands. */
  state(): SyslogCollectorState {
    return {
      address: this.#settings.address,
      tls: this.#settings.tls !== undefined,
      connected: this.#connected,
      sentTotal: this.#sent,
      bufferedBytes: this.#bufferSize - this.#readOffset,
      droppedTotal: this.#dropped,
      lastError: this.#lastError,
    };
  }

  /** Stops forwarding; what is still buffered stays on disk for the next start. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    if (socket) {
      // Let frames already queued reach the collector, but never wait long for it.
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    closeSync(this.#bufferFd);
  }

  #buffer(frame: Buffer): void {
    if (this.#bufferSize + frame.length > this.#settings.bufferBytes) {
      this.#dropped++;
      if (this.#dropped === 1 || this.#dropped % 1000 === 0) {
        this.#log.error('syslog buffer full: audit records are not being forwarded', { collector: this.#settings.address, droppedTotal: this.#dropped, bufferBytes: this.#settings.bufferBytes });
      }
      return;
    }
    try {
      writeSync(this.#bufferFd, frame);
      this.#bufferSize += frame.length;
    } catch (error: unknown) {
      this.#dropped++;
      this.#lastError = `buffer write failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  #connect(): void {
    if (this.#stopped) return;
    const { host, port, tls } = this.#settings;
    let socket: Socket;
    try {
      socket = this.#open(host, port, tls);
    } catch (error: unknown) {
      // A TLS file that is missing or half-rotated must never take the broker down: retry later.
      this.#lastError = `cannot connect: ${error instanceof Error ? error.message : String(error)}`;
      this.#retryLater();
      return;
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      this.#connected = true;
      this.#delayMs = reconnectInitialMs;
      this.#log.info('syslog collector connected', { collector: this.#settings.address, bufferedBytes: this.#bufferSize - this.#readOffset });
      void this.#drain();
    });
    socket.on('error', (error: Error) => {
      this.#lastError = error.message;
    });
    // The collector sends nothing back; reading keeps a half-closed peer visible.
    socket.on('data', () => undefined);
    socket.on('drain', () => void this.#drain());
    socket.once('close', () => {
      const wasConnected = this.#connected;
      this.#connected = false;
      this.#socket = undefined;
      if (this.#stopped) return;
      if (wasConnected) this.#log.warn('syslog collector unreachable; buffering audit records on disk', { collector: this.#settings.address, error: this.#lastError });
      this.#retryLater();
    });
  }

  /** Opens the connection to the collector (TLS files are read here, so they may rotate). */
  #open(host: string, port: number, tls: SyslogCollectorSettings['tls']): Socket {
    return tls
      ? connectTls({
          host,
          port,
          minVersion: 'TLSv1.2',
          ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
          ...(tls.caFile === undefined ? {} : { ca: readFileSync(tls.caFile) }),
          ...(tls.certFile === undefined ? {} : { cert: readFileSync(tls.certFile) }),
          ...(tls.keyFile === undefined ? {} : { key: readFileSync(tls.keyFile) }),
        })
      : connectTcp({ host, port });
  }

  /** Schedules the next connection attempt, with jittered exponential back-off. */
  #retryLater(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#connect(), this.#delayMs * (0.5 + Math.random() / 2));
    this.#timer.unref();
    this.#delayMs = Math.min(this.#delayMs * 2, reconnectMaxMs);
  }

  /** Sends the disk buffer, oldest first, then lets live frames through again. */
  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#connected && this.#socket && this.#readOffset < this.#bufferSize) {
        const socket = this.#socket;
        const chunk = Buffer.alloc(Math.min(drainChunk, this.#bufferSize - this.#readOffset));
        const read = readSync(this.#bufferFd, chunk, 0, chunk.length, this.#readOffset);
        const whole = wholeFrames(chunk.subarray(0, read));
        if (whole.bytes === 0) break;
        await new Promise<void>((resolve, reject) => socket.write(chunk.subarray(0, whole.bytes), (error) => (error ? reject(error) : resolve())));
        this.#readOffset += whole.bytes;
        this.#sent += whole.frames;
      }
      if (this.#readOffset >= this.#bufferSize && this.#bufferSize > 0) {
        ftruncateSync(this.#bufferFd, 0);
        this.#bufferSize = 0;
        this.#readOffset = 0;
      }
    } catch (error: unknown) {
      this.#lastError = error instanceof Error ? error.message : String(error);
    } finally {
      this.#draining = false;
    }
  }
}
