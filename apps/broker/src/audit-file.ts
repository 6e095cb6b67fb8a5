import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { emptyHead, headOf, parseEntry } from '@hsm-broker/audit';
import type { ChainHead } from '@hsm-broker/audit';
import type { Logger } from './logger.js';

const rotatedSuffix = /^\.(\d{12})$/;

/**
 * The trail on disk: one active file, appended to line by line, rotated by
 * size into `FILE.<seq of its first entry>` (twelve digits, so names sort
 * in chain order). The chain continues across files: the first entry of a
 * new file links to the last entry of the one before.
 */
export class AuditFile {
  readonly path: string;
  readonly #rotateBytes: number;
  #fd: number;
  #size: number;
  #firstSeq: number | undefined;

  private constructor(path: string, rotateBytes: number, fd: number, size: number, firstSeq: number | undefined) {
    this.path = path;
    this.#rotateBytes = rotateBytes;
    this.#fd = fd;
    this.#size = size;
    this.#firstSeq = firstSeq;
  }

  /** Opens the active file (made 0600 under a 0700 folder) and finds where the chain stands. */
  static open(path: string, rotateBytes: number, log: Logger): { file: AuditFile; head: ChainHead } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const fd = openSync(path, 'a', 0o600);
    const complete = text.lastIndexOf('\n') + 1;
    if (complete < text.length) {
      // A crash mid-write left half a line; the chain continues from the last whole one.
      log.warn('audit file ended in a partial line; it was cut off', { file: path, bytes: Buffer.byteLength(text.slice(complete)) });
      text = text.slice(0, complete);
      ftruncateSync(fd, Buffer.byteLength(text));
    }
    const firstLine = text.slice(0, text.indexOf('\n'));
    const firstSeq = text === '' ? undefined : parseEntry(firstLine)?.seq;
    const file = new AuditFile(path, rotateBytes, fd, Buffer.byteLength(text), firstSeq);
    let head = headOf(text);
    if (!head) {
      const previous = file.files().filter((name) => name !== path).pop();
      head = previous ? headOf(readFileSync(previous, 'utf8')) : undefined;
    }
    return { file, head: head ?? emptyHead };
  }

  /** Appends one entry's line; rotates first when it would make the file too big. Returns whether it rotated. */
  append(line: string, seq: number): boolean {
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    let rotated = false;
    if (this.#size > 0 && this.#size + bytes.length > this.#rotateBytes) {
      // Rename first, then open the new file, then close the old descriptor: if any step fails the
      // old descriptor is still ours and still open, so a later close can never hit a reused number.
      renameSync(this.path, `${this.path}.${String(this.#firstSeq ?? seq).padStart(12, '0')}`);
      const next = openSync(this.path, 'a', 0o600);
      closeSync(this.#fd);
      this.#fd = next;
      this.#size = 0;
      this.#firstSeq = undefined;
      rotated = true;
    }
    writeSync(this.#fd, bytes);
    this.#size += bytes.length;
    this.#firstSeq ??= seq;
    return rotated;
  }

  /** Every file of the trail in chain order: rotated ones, then the active one. */
  files(): string[] {
    const folder = dirname(this.path);
    const name = basename(this.path);
    const rotated = readdirSync(folder)
      .filter((entry) => entry.startsWith(name) && rotatedSuffix.test(entry.slice(name.length)))
      .sort()
      .map((entry) => join(folder, entry));
    return [...rotated, ...(existsSync(this.path) ? [this.path] : [])];
  }

  close(): void {
    closeSync(this.#fd);
  }
}
