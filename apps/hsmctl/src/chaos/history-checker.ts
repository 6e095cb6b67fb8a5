import type { CallRecord, HistoryRecord, LoadOperation } from '../load/call-history.js';
import { digestOf } from '../load/call-history.js';
import { signatureVerifies } from './signature-check.js';

/** What kind of promise a history broke. */
export const violationKinds = [
  'lost-write',
  'under-replicated',
  'unreadable-ciphertext',
  'bad-signature',
  'wrong-answer',
  'unexpected-code',
  'deadline-overrun',
] as const;

/** One of {@link violationKinds}. */
export type ViolationKind = (typeof violationKinds)[number];

/** One broken promise, with the call that shows it. */
export interface Violation {
  kind: ViolationKind;
  op: LoadOperation;
  process: number;
  seq: number;
  keyId: string;
  detail: string;
}

/** A key as the broker describes it afterwards. */
export interface KeyReadBack {
  /** Versions the key has, and how many appliances hold each. */
  versions: ReadonlyMap<number, number>;
}

/**
 * How the checker reads back what the history says was written. The broker
 * implements it (broker-read-back.ts); unit tests pass in-memory fakes.
 */
export interface HistoryReadBack {
  /** The key, or undefined when the broker does not know it (NOT_FOUND). */
  describeKey(keyId: string): Promise<KeyReadBack | undefined>;
  /** Decrypts a ciphertext; rejects when the broker cannot. */
  decrypt(ciphertext: Uint8Array): Promise<Uint8Array>;
  /** The public key (PEM) of one version of an asymmetric key. */
  publicKeyPem(keyId: string, version: number): Promise<string>;
}

/** What the checker holds a history to. */
export interface CheckOptions {
  /**
   * Status codes a call may end with under faults, besides OK. Default: the
   * documented ones, `UNAVAILABLE` (no appliance could serve it),
   * `DEADLINE_EXCEEDED` and `RESOURCE_EXHAUSTED` (every session busy until the
   * deadline).
   */
  allowedCodes?: readonly string[];
  /** How far past its deadline a call may end, in ms (default 100). */
  deadlineSlackMs?: number;
  /** Appliances that must hold each acknowledged key version (default 2; 0 skips the check). */
  minReplicas?: number;
  /** Read-backs in flight at once (default 8). */
  concurrency?: number;
}

/** The documented codes of a call under faults (see {@link CheckOptions.allowedCodes}). */
export const documentedFailureCodes = ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED'] as const;

/** Operations that are safe to retry and so should never fail while a replica is up. */
export const idempotentOperations: ReadonlySet<LoadOperation> = new Set([
  'Encrypt',
  'Decrypt',
  'Sign',
  'Verify',
  'GenerateMac',
  'VerifyMac',
  'GenerateDataKey',
]);

/** What a check found. */
export interface CheckReport {
  calls: number;
  /** Calls by operation and result code. */
  results: Record<string, Record<string, number>>;
  /** Failed idempotent calls (allowed codes, but a cost to callers all the same). */
  failedIdempotent: number;
  /** The most time a load process's event loop was stalled during one call, ms (discounted from deadline overruns). */
  maxClientLagMs: number;
  /** What was read back. */
  checked: { keys: number; rotations: number; ciphertexts: number; signatures: number };
  violations: Violation[];
}

/**
 * Checks a history: every acknowledged write is readable afterwards
 * (CreateKey and RotateKey through DescribeKey, every ciphertext through
 * Decrypt, compared with the digest of what was encrypted), every
 * acknowledged signature verifies with node:crypto against GetPublicKey,
 * every answer given during the run about earlier outputs was right, no call
 * ended with a code outside the documented set, and none ended more than
 * the slack past its deadline, not counting time the caller's own event
 * loop was stalled (a late timer in the load process is not the broker's).
 */
export async function checkHistory(
  history: readonly HistoryRecord[],
  readBack: HistoryReadBack,
  options: CheckOptions = {},
): Promise<CheckReport> {
  const allowed = new Set(['OK', ...(options.allowedCodes ?? documentedFailureCodes)]);
  const slack = options.deadlineSlackMs ?? 100;
  const minReplicas = options.minReplicas ?? 2;
  const calls = history.filter((record): record is CallRecord => record.type === 'call');
  const violations: Violation[] = [];
  const violation = (kind: ViolationKind, call: CallRecord, detail: string): void => {
    violations.push({ kind, op: call.op, process: call.process, seq: call.seq, keyId: call.keyId, detail });
  };

  const results: Record<string, Record<string, number>> = {};
  let failedIdempotent = 0;
  let maxClientLagMs = 0;
  for (const call of calls) {
    const byCode = (results[call.op] ??= {});
    byCode[call.code] = (byCode[call.code] ?? 0) + 1;
    if (call.code !== 'OK' && idempotentOperations.has(call.op)) failedIdempotent += 1;
    if (!allowed.has(call.code)) {
      violation('unexpected-code', call, `ended with ${call.code}${call.reason === undefined ? '' : ` [${call.reason}]`}`);
    }
    maxClientLagMs = Math.max(maxClientLagMs, call.clientLagMs ?? 0);
    const overrun = call.endMs - call.startMs - call.deadlineMs - (call.clientLagMs ?? 0);
    if (overrun > slack) {
      const lag = call.clientLagMs === undefined ? '' : ` (the caller's event loop stalled ${String(call.clientLagMs)} ms meanwhile)`;
      violation('deadline-overrun', call, `took ${(call.endMs - call.startMs).toFixed(1)} ms with a ${String(call.deadlineMs)} ms deadline${lag}`);
    }
    if (call.code === 'OK' && call.correct === false) {
      violation('wrong-answer', call, wrongAnswer(call.op));
    }
  }

  const acknowledged = calls.filter((call) => call.code === 'OK');
  const keyIds = [...new Set(acknowledged.filter((call) => call.op === 'CreateKey' || call.op === 'RotateKey').map((call) => call.keyId))];
  const keys = new Map<string, KeyReadBack | string>();
  await eachLimited(keyIds, options.concurrency ?? 8, async (keyId) => {
    try {
      keys.set(keyId, (await readBack.describeKey(keyId)) ?? `DescribeKey finds no key ${keyId}`);
    } catch (error: unknown) {
      keys.set(keyId, `DescribeKey failed: ${describe(error)}`);
    }
  });
  let rotations = 0;
  for (const call of acknowledged) {
    if (call.op !== 'CreateKey' && call.op !== 'RotateKey') continue;
    if (call.op === 'RotateKey') rotations += 1;
    const key = keys.get(call.keyId);
    const version = call.keyVersion ?? 1;
    if (key === undefined || typeof key === 'string') {
      violation('lost-write', call, `acknowledged ${call.op}, but ${key ?? 'the key was not read back'}`);
      continue;
    }
    const holders = key.versions.get(version);
    if (holders === undefined) {
      violation('lost-write', call, `acknowledged ${call.op} made version ${String(version)}, which the key no longer has`);
    } else if (holders < minReplicas) {
      violation('under-replicated', call, `version ${String(version)} is on ${String(holders)} appliance(s), fewer than ${String(minReplicas)}`);
    }
  }

  const sealed = acknowledged.filter((call) => call.ciphertext !== undefined);
  await eachLimited(sealed, options.concurrency ?? 8, async (call) => {
    try {
      const plaintext = await readBack.decrypt(Buffer.from(call.ciphertext ?? '', 'base64'));
      if (digestOf(plaintext) !== call.plaintextDigest) {
        violation('unreadable-ciphertext', call, 'decrypts to something other than what was encrypted');
      }
    } catch (error: unknown) {
      violation('unreadable-ciphertext', call, `Decrypt failed: ${describe(error)}`);
    }
  });

  const signed = acknowledged.filter((call) => call.op === 'Sign');
  const publicKeys = new Map<string, Promise<string>>();
  await eachLimited(signed, options.concurrency ?? 8, async (call) => {
    const version = call.keyVersion ?? 0;
    const id = `${call.keyId}\u0000${String(version)}`;
    let pem = publicKeys.get(id);
    if (pem === undefined) {
      pem = readBack.publicKeyPem(call.keyId, version);
      publicKeys.set(id, pem);
    }
    try {
      const valid = signatureVerifies(
        call.algorithm ?? '',
        await pem,
        Buffer.from(call.message ?? '', 'base64'),
        Buffer.from(call.signature ?? '', 'base64'),
      );
      if (!valid) violation('bad-signature', call, `signature does not verify under version ${String(version)}'s public key`);
    } catch (error: unknown) {
      violation('bad-signature', call, `could not be checked: ${describe(error)}`);
    }
  });

  violations.sort((a, b) => a.process - b.process || a.seq - b.seq);
  return {
    calls: calls.length,
    results,
    failedIdempotent,
    maxClientLagMs,
    checked: { keys: keyIds.length, rotations, ciphertexts: sealed.length, signatures: signed.length },
    violations,
  };
}

function wrongAnswer(op: LoadOperation): string {
  switch (op) {
    case 'Decrypt':
      return 'decrypted a ciphertext of this run to something other than its plaintext';
    case 'Verify':
      return 'called a signature of this run invalid';
    case 'VerifyMac':
      return 'called a MAC of this run invalid';
    case 'Encrypt':
    case 'Sign':
    case 'GenerateMac':
    case 'GenerateDataKey':
    case 'CreateKey':
    case 'RotateKey':
      return 'gave a wrong answer';
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'number' || typeof code === 'string' ? `${error.message} (${String(code)})` : error.message;
  }
  return String(error);
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
