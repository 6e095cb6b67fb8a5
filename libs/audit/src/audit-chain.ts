import { entryLine, genesisHash, lineHash, parseEntry } from './audit-entry.js';
import type { AuditEntry, UnlinkedEntry } from './audit-entry.js';

/** Where a chain stands: the last sequence number and the hash of the last line. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** The head of an empty trail. */
export const emptyHead: ChainHead = { seq: 0, hash: genesisHash };

/**
 * Links entries into the hash chain: each gets the next sequence number and
 * the hash of the line before it. The writer owns one chain and appends the
 * returned lines in order.
 */
export class AuditChain {
  #head: ChainHead;

  constructor(head: ChainHead = emptyHead) {
    this.#head = { ...head };
  }

  /** The last entry linked so far. */
  get head(): ChainHead {
    return { ...this.#head };
  }

  /** Links `entry` after the head and returns it with its line. */
  link(entry: UnlinkedEntry): { entry: AuditEntry; line: string } {
    const linked = { seq: this.#head.seq + 1, prev: this.#head.hash, ...entry };
    const line = entryLine(linked);
    this.#head = { seq: linked.seq, hash: lineHash(line) };
    return { entry: linked, line };
  }
}

/**
 * The head a trail ends in, from its last complete line; undefined when the
 * text holds no entry. A partial last line (a crash mid-write) is ignored.
 */
export function headOf(text: string): ChainHead | undefined {
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a partial line
  for (let index = lines.length - 1; index >= 0; index--) {
    const line = lines[index] ?? '';
    const entry = parseEntry(line);
    if (entry) return { seq: entry.seq, hash: lineHash(line) };
  }
  return undefined;
}
