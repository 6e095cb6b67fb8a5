import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import type { FaultAction } from '../faults/fault-action.js';

/** The operations the mixed load makes, by RPC name. */
export const loadOperations = [
  'Encrypt',
  'Decrypt',
  'Sign',
  'Verify',
  'GenerateMac',
  'VerifyMac',
  'GenerateDataKey',
  'CreateKey',
  'RotateKey',
] as const;

/** One of {@link loadOperations}. */
export type LoadOperation = (typeof loadOperations)[number];

/**
 * One call as the history file keeps it: one JSON object per line. Inputs are
 * kept as SHA-256 digests; outputs are kept when the check afterwards needs
 * them (a ciphertext to decrypt, a signature and the test message it signs,
 * which is random load data and never a caller's).
 */
export interface CallRecord {
  type: 'call';
  /** Order of issue within its load process. */
  seq: number;
  /** The load process that made it (0 when there is one). */
  process: number;
  op: LoadOperation;
  keyId: string;
  /** The key version the broker used or made; absent when the call failed. */
  keyVersion?: number;
  /** Hex SHA-256 of the call's input (plaintext, message or ciphertext). */
  inputDigest: string;
  /** `OK` or the gRPC status name. */
  code: string;
  /** The broker's stable reason, when the call failed. */
  reason?: string;
  /** Wall-clock start and end, milliseconds since the epoch (fractional). */
  startMs: number;
  endMs: number;
  /** The deadline the call was given, relative to its start. */
  deadlineMs: number;
  /**
   * How long the load process's own event loop was stalled in all while the
   * call ran, ms: a late timer in the caller delays the end of a call without
   * the broker having taken longer, and the deadline check discounts it.
   */
  clientLagMs?: number;
  /** Encrypt: the ciphertext; GenerateDataKey: the encrypted data key (base64). */
  ciphertext?: string;
  /** Encrypt and GenerateDataKey: hex SHA-256 of what the ciphertext must decrypt to. */
  plaintextDigest?: string;
  /** Sign: the message signed (base64) and the signature (base64, DER for ECDSA). */
  message?: string;
  signature?: string;
  /** Sign: the signing algorithm, by enum name without prefix (`ECDSA_SHA_256`). */
  algorithm?: string;
  /**
   * Decrypt, Verify, VerifyMac of outputs made earlier in the run: whether the
   * broker gave the right answer (the original plaintext, `valid: true`).
   */
  correct?: boolean;
}

/** A fault as it was carried out, interleaved with the calls. */
export interface FaultRecord {
  type: 'fault';
  /** When it was started and when the driver was done, ms since the epoch. */
  startMs: number;
  endMs: number;
  action: FaultAction;
  description: string;
  /** Set when the driver failed to carry it out. */
  error?: string;
}

/** A line of a history file. */
export type HistoryRecord = CallRecord | FaultRecord;

/** Hex SHA-256 of some bytes. */
export function digestOf(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Base64 of some bytes, for the history file. */
export function toBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

/**
 * Appends records to a history file, one JSON line each. Writes are
 * buffered by the stream; {@link close} waits until everything is on disk.
 */
export class HistoryWriter {
  readonly #stream: WriteStream;
  #failure: Error | undefined;

  constructor(path: string) {
    this.#stream = createWriteStream(path, { flags: 'w', mode: 0o600 });
    this.#stream.on('error', (error) => {
      this.#failure ??= error;
    });
  }

  /** Queues one record. */
  write(record: HistoryRecord): void {
    if (this.#failure !== undefined) return;
    this.#stream.write(`${JSON.stringify(record)}\n`);
  }

  /** Flushes and closes the file; rejects with the first write error, if any. */
  async close(): Promise<void> {
    if (!this.#stream.closed) {
      this.#stream.end();
      if (!this.#stream.closed) await once(this.#stream, 'close');
    }
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/**
 * Reads a history file. A line that is not a record is an error naming the
 * line, because a checker that skipped it would pass a history it never saw.
 */
export async function readHistory(path: string): Promise<HistoryRecord[]> {
  const text = await readFile(path, 'utf8');
  return parseHistory(text, path);
}

/** Parses the text of a history file (see {@link readHistory}). */
export function parseHistory(text: string, name = 'history'): HistoryRecord[] {
  const records: HistoryRecord[] = [];
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${name}:${String(index + 1)}: not JSON`);
    }
    const type = (value as { type?: unknown } | null)?.type;
    if (type !== 'call' && type !== 'fault') throw new Error(`${name}:${String(index + 1)}: no record type`);
    records.push(value as HistoryRecord);
  }
  return records;
}
