import type { Writable } from 'node:stream';
import type { BackupProgress } from '@hsm-broker/client';
import { printable } from './text-table.js';

/**
 * Shows the progress of a long call on stderr. On a terminal it is one line,
 * redrawn in place (`Backup: wrapping 7/12 (58%)`); anywhere else (a log
 * file, CI) it is one line per stage, written when the stage starts, so that
 * the log shows where a slow run spent its time without thousands of lines.
 */
export class ProgressLine {
  readonly #stream: Writable;
  readonly #label: string;
  readonly #inPlace: boolean;
  #stage: string | undefined;
  #drawn = false;

  constructor(stream: Writable & { isTTY?: boolean }, label: string) {
    this.#stream = stream;
    this.#label = label;
    this.#inPlace = stream.isTTY === true;
  }

  /** Shows one progress event. */
  update(progress: BackupProgress): void {
    const text = `${this.#label}: ${describeProgress(progress)}`;
    if (this.#inPlace) {
      // Carriage return, the text, then erase whatever a longer line left behind.
      this.#stream.write(`\r${text}\u001b[K`);
      this.#drawn = true;
    } else if (progress.stage !== this.#stage) {
      this.#stream.write(`${text}\n`);
    }
    this.#stage = progress.stage;
  }

  /**
   * Ends the line drawn in place, so that what follows (the summary, or an
   * error message) starts on a line of its own. Safe to call twice.
   */
  finish(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }
}

/** `wrapping 7/12 (58%)`; a stage without a count is just its name. */
export function describeProgress(progress: BackupProgress): string {
  const stage = printable(progress.stage === '' ? 'working' : progress.stage);
  if (progress.total === 0) return stage;
  const percent = Math.floor((Math.min(progress.done, progress.total) / progress.total) * 100);
  return `${stage} ${String(progress.done)}/${String(progress.total)} (${String(percent)}%)`;
}
