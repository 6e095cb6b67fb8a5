import { checkpointSignatureProblem } from './audit-checkpoint.js';
import { genesisHash, lineHash, parseEntry } from './audit-entry.js';
import type { AuditCheckpoint, AuditEntry } from './audit-entry.js';

/** What can be wrong with a trail. */
export const AuditProblemKind = {
  /** A record's content differs from what the chain or a checkpoint recorded. */
  changed: 'changed',
  /** Records are missing from the middle of the chain. */
  removed: 'removed',
  /** A record that the chain does not link (a duplicate sequence number). */
  inserted: 'inserted',
  /** A record stands out of sequence order. */
  reordered: 'reordered',
  /** A file ends in a partial line. */
  truncated: 'truncated',
  /** The files do not start at the first record ever written. */
  missingHead: 'missing-head',
  /** A checkpoint's signature does not verify. */
  badSignature: 'bad-signature',
  /** A checkpoint was signed by a key other than the pinned one. */
  wrongKey: 'wrong-key',
  /** A key was pinned but no checkpoint signed by it covers the trail. */
  unsigned: 'unsigned',
} as const;
/** One of {@link AuditProblemKind}. */
export type AuditProblemKind = (typeof AuditProblemKind)[keyof typeof AuditProblemKind];

/** One finding, with where it is. */
export interface AuditProblem {
  kind: AuditProblemKind;
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  seq?: number;
  message: string;
}

/** The outcome of verifying a set of trail files. */
export interface AuditVerification {
  ok: boolean;
  /** The files in chain order. */
  files: string[];
  records: number;
  checkpoints: number;
  firstSeq: number;
  lastSeq: number;
  /** Highest sequence number a valid checkpoint covers (0 when none). */
  lastCheckpointSeq: number;
  /** Entries after the last valid checkpoint: their integrity rests on the chain alone. */
  unsignedEntries: number;
  /** The signing key a valid checkpoint was checked against; undefined when none verified. */
  keyFingerprint: string | undefined;
  /**
   * Whether the caller pinned the key. Unpinned, the first checkpoint's key is
   * trusted, and whoever rewrote the whole file could have signed it anew.
   */
  keyPinned: boolean;
  problems: AuditProblem[];
}

/** A trail file's name and text. */
export interface AuditFileInput {
  name: string;
  content: string;
}

/** Verification settings. */
export interface VerifyOptions {
  /** Expected signing-key fingerprint; without it the first checkpoint's key is pinned. */
  keyFingerprint?: string;
}

interface Row {
  file: string;
  line: number;
  raw: string;
  hash: string;
  entry: AuditEntry | undefined;
  index: number;
}

function rowsOf(files: AuditFileInput[], problems: AuditProblem[]): { rows: Row[]; order: string[] } {
  const perFile = files.map((file) => {
    const lines = file.content.split('\n');
    const tail = lines.pop() ?? '';
    if (tail !== '') {
      problems.push({ kind: AuditProblemKind.truncated, file: file.name, line: lines.length + 1, message: `${file.name} ends in a partial line of ${String(Buffer.byteLength(tail))} bytes (truncated)` });
    }
    const rows = lines.map((raw, index) => ({ file: file.name, line: index + 1, raw, hash: lineHash(raw), entry: parseEntry(raw), index: 0 }));
    const first = rows.find((row) => row.entry)?.entry?.seq ?? Number.MAX_SAFE_INTEGER;
    return { name: file.name, rows, first };
  });
  perFile.sort((a, b) => a.first - b.first);
  const rows = perFile.flatMap((file) => file.rows);
  rows.forEach((row, index) => (row.index = index));
  return { rows, order: perFile.map((file) => file.name) };
}

function at(row: Row): string {
  return `${row.file}:${String(row.line)}`;
}

/**
 * Verifies trail files (one file, or the set of rotated files in any order):
 * the hash chain, sequence order, checkpoint signatures and the pinned
 * signing key. Each problem says what is wrong and where.
 */
export function verifyAuditTrail(files: AuditFileInput[], options: VerifyOptions = {}): AuditVerification {
  const problems: AuditProblem[] = [];
  const { rows, order } = rowsOf(files, problems);
  const entries = rows.filter((row): row is Row & { entry: AuditEntry } => row.entry !== undefined);
  for (const row of rows) {
    if (!row.entry) problems.push({ kind: AuditProblemKind.changed, file: row.file, line: row.line, message: `${at(row)} is not an audit entry (changed)` });
  }
  const bySeq = new Map<number, (Row & { entry: AuditEntry })[]>();
  for (const row of entries) bySeq.set(row.entry.seq, [...(bySeq.get(row.entry.seq) ?? []), row]);
  const firstSeq = entries.reduce((min, row) => Math.min(min, row.entry.seq), Number.MAX_SAFE_INTEGER);
  const lastSeq = entries.reduce((max, row) => Math.max(max, row.entry.seq), 0);

  // Duplicates: the genuine one is the record its successor links to.
  const inserted = new Set<Row>();
  const genuine = new Map<number, Row & { entry: AuditEntry }>();
  for (const [seq, candidates] of bySeq) {
    const successors = bySeq.get(seq + 1) ?? [];
    const linked = candidates.find((candidate) => successors.some((next) => next.entry.prev === candidate.hash)) ?? candidates[0];
    if (!linked) continue;
    genuine.set(seq, linked);
    for (const candidate of candidates) {
      if (candidate === linked) continue;
      inserted.add(candidate);
      problems.push({ kind: AuditProblemKind.inserted, file: candidate.file, line: candidate.line, seq, message: `${at(candidate)} repeats seq ${String(seq)} (also at ${at(linked)}) and is not linked by the chain (inserted)` });
    }
  }

  if (entries.length > 0 && firstSeq !== 1) {
    const first = genuine.get(firstSeq);
    if (first) problems.push({ kind: AuditProblemKind.missingHead, file: first.file, line: first.line, seq: firstSeq, message: `the trail starts at seq ${String(firstSeq)}; records 1 to ${String(firstSeq - 1)} are not in the given files` });
  }

  // Gaps in the sequence: removed records (unless a malformed line sits there).
  // Walks the distinct sequence numbers, so a forged huge `seq` costs nothing.
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  for (let index = 1; index < seqs.length; index++) {
    const previous = seqs[index - 1] ?? 0;
    const next = seqs[index] ?? 0;
    if (next === previous + 1) continue;
    const seq = previous + 1;
    const end = next - 1;
    const before = genuine.get(previous);
    const after = genuine.get(next);
    const malformedBetween = before && after && rows.slice(Math.min(before.index, after.index) + 1, Math.max(before.index, after.index)).some((row) => !row.entry);
    if (!malformedBetween && after) {
      const range = seq === end ? `seq ${String(seq)} is` : `seq ${String(seq)} to ${String(end)} are`;
      problems.push({ kind: AuditProblemKind.removed, file: after.file, line: after.line, seq, message: `${range} missing before ${at(after)} (removed)` });
    }
  }

  // Physical order: a record after one with a higher sequence number.
  let highest: (Row & { entry: AuditEntry }) | undefined;
  for (const row of entries) {
    if (inserted.has(row)) continue;
    if (highest && row.entry.seq < highest.entry.seq) {
      problems.push({ kind: AuditProblemKind.reordered, file: row.file, line: row.line, seq: row.entry.seq, message: `seq ${String(row.entry.seq)} at ${at(row)} comes after seq ${String(highest.entry.seq)} at ${at(highest)} (reordered)` });
    } else {
      highest = row;
    }
  }

  // Links: each record names the hash of the one before it. One changed
  // record breaks the link to its successor (and, if its `prev` was edited,
  // the link from its predecessor too): blame the record both links share.
  const broken = new Set<number>();
  for (const [seq, row] of genuine) {
    if (seq === 1) {
      if (row.entry.prev !== genesisHash) broken.add(0);
      continue;
    }
    const before = genuine.get(seq - 1);
    if (before && row.entry.prev !== before.hash) broken.add(seq - 1);
  }
  const changed = new Set<number>();
  for (const seq of [...broken].sort((a, b) => a - b)) {
    if (broken.has(seq + 1)) continue; // the next record explains this link too
    changed.add(seq === 0 ? 1 : seq);
  }
  for (const seq of changed) {
    const row = genuine.get(seq);
    if (row) problems.push({ kind: AuditProblemKind.changed, file: row.file, line: row.line, seq, message: `seq ${String(seq)} at ${at(row)} no longer matches the hash the next record holds (changed)` });
  }

  // Checkpoints: signature, pinned key, and the head they cover.
  let pinned = options.keyFingerprint?.toLowerCase();
  let lastCheckpointSeq = 0;
  let checkpoints = 0;
  for (const row of entries) {
    if (row.entry.type !== 'checkpoint' || inserted.has(row)) continue;
    checkpoints++;
    const checkpoint: AuditCheckpoint = row.entry;
    const problem = checkpointSignatureProblem(checkpoint);
    if (problem) {
      problems.push({ kind: AuditProblemKind.badSignature, file: row.file, line: row.line, seq: checkpoint.seq, message: `checkpoint at ${at(row)}: ${problem}` });
      continue;
    }
    pinned ??= checkpoint.key.fingerprint;
    if (checkpoint.key.fingerprint !== pinned) {
      problems.push({ kind: AuditProblemKind.wrongKey, file: row.file, line: row.line, seq: checkpoint.seq, message: `checkpoint at ${at(row)} is signed by key ${checkpoint.key.fingerprint}, not the pinned ${pinned}` });
      continue;
    }
    const covered = genuine.get(checkpoint.covers.seq);
    if (covered && covered.hash !== checkpoint.covers.hash && !changed.has(checkpoint.covers.seq)) {
      problems.push({ kind: AuditProblemKind.changed, file: covered.file, line: covered.line, seq: covered.entry.seq, message: `seq ${String(covered.entry.seq)} at ${at(covered)} does not match the checkpoint at ${at(row)} (the chain up to it was changed)` });
    }
    if (covered) lastCheckpointSeq = Math.max(lastCheckpointSeq, checkpoint.covers.seq);
  }
  // A pinned key must have signed something: stripping every checkpoint and
  // rebuilding the chain would otherwise pass.
  if (options.keyFingerprint !== undefined && lastCheckpointSeq === 0 && entries.length > 0) {
    const last = entries[entries.length - 1];
    if (last) problems.push({ kind: AuditProblemKind.unsigned, file: last.file, line: last.line, message: `no checkpoint signed by the pinned key ${pinned ?? ''} covers any record (unsigned)` });
  }
  problems.sort((a, b) => order.indexOf(a.file) - order.indexOf(b.file) || a.line - b.line);
  return {
    ok: problems.length === 0,
    files: order,
    records: entries.filter((row) => row.entry.type === 'call').length,
    checkpoints,
    firstSeq: entries.length === 0 ? 0 : firstSeq,
    lastSeq,
    lastCheckpointSeq,
    unsignedEntries: entries.filter((row) => row.entry.seq > lastCheckpointSeq).length,
    keyFingerprint: lastCheckpointSeq > 0 ? pinned : undefined,
    keyPinned: options.keyFingerprint !== undefined,
    problems,
  };
}
