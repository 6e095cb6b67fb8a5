import type { Writable } from 'node:stream';
import { formatDuration } from '../duration-text.js';
import type { HistoryRecord } from './call-history.js';

/**
 * The progress line of a chaos run or game day: elapsed time, calls and
 * failures so far, calls in the last second and their slowest latency, and
 * the last fault. Redrawn in place on a terminal; elsewhere (CI logs) one
 * line every ten seconds and one per fault.
 */
export class LiveProgress {
  readonly #stream: Writable & { isTTY?: boolean };
  readonly #label: string;
  readonly #totalMs: number;
  readonly #originMs: number;
  readonly #inPlace: boolean;
  #calls = 0;
  #failed = 0;
  #recent: { endMs: number; latencyMs: number }[] = [];
  #lastFault = '';
  #phase = '';
  #timer: NodeJS.Timeout | undefined;
  #lastLogged = 0;

  constructor(stream: Writable & { isTTY?: boolean }, label: string, totalMs: number, originMs = Date.now()) {
    this.#stream = stream;
    this.#label = label;
    this.#totalMs = totalMs;
    this.#originMs = originMs;
    this.#inPlace = stream.isTTY === true;
  }

  /** Counts one record. */
  note(record: HistoryRecord): void {
    if (record.type === 'fault') {
      this.#lastFault = record.error === undefined ? record.description : `${record.description} (FAILED)`;
      if (!this.#inPlace) this.#draw();
      return;
    }
    this.#calls += 1;
    if (record.code !== 'OK') this.#failed += 1;
    this.#recent.push({ endMs: record.endMs, latencyMs: record.endMs - record.startMs });
  }

  /** Names the phase being run (game days). */
  phase(name: string): void {
    this.#phase = name;
    if (!this.#inPlace) this.#draw();
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#inPlace || Date.now() - this.#lastLogged >= 10_000) this.#draw();
    }, 500);
  }

  /** Ends the line, so what follows starts on its own. */
  finish(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw();
    if (this.#inPlace) this.#stream.write('\n');
  }

  #draw(): void {
    const now = Date.now();
    this.#recent = this.#recent.filter((entry) => entry.endMs >= now - 1000);
    const slowest = this.#recent.reduce((max, entry) => Math.max(max, entry.latencyMs), 0);
    const parts = [
      `${this.#label}: ${formatDuration(Math.max(0, now - this.#originMs))}/${formatDuration(this.#totalMs)}`,
      ...(this.#phase === '' ? [] : [`phase ${this.#phase}`]),
      `${String(this.#calls)} calls`,
      `${String(this.#failed)} failed`,
      `${String(this.#recent.length)}/s max ${slowest.toFixed(0)}ms`,
      ...(this.#lastFault === '' ? [] : [`last fault: ${this.#lastFault}`]),
    ];
    const text = parts.join(' · ');
    this.#lastLogged = now;
    this.#stream.write(this.#inPlace ? `\r${text}\u001b[K` : `${text}\n`);
  }
}
