import { createHash } from 'node:crypto';

/** `prev` of the very first entry of a trail: there is nothing before it. */
export const genesisHash = '0'.repeat(64);

/** Fields every entry of the trail starts with, in this order. */
export interface ChainLink {
  /** 1 for the first entry the broker ever wrote, then +1 per entry, across rotated files. */
  seq: number;
  /** SHA-256 (hex) of the previous entry's line, exactly as written. */
  prev: string;
}

/** One call to the broker, allowed or denied. Never carries plaintext, ciphertext, key material or PINs. */
export interface AuditCallRecord extends ChainLink {
  type: 'call';
  /** ISO 8601 time the call was answered. */
  time: string;
  identity: string;
  peer: string;
  /** RPC method name as in the proto (`Encrypt`, `DrainAppliance`, ...). */
  operation: string;
  keyId?: string;
  keyVersion?: number;
  /** Appliances that served the call, in the order they were tried. */
  appliances: string[];
  /** gRPC status code (0 for OK). */
  code: number;
  /** Stable reason string of a refusal. */
  reason?: string;
  latencyMs: number;
  requestId: string;
  /** State before a key lifecycle change or fleet control. */
  before?: Record<string, unknown>;
  /** State after it. */
  after?: Record<string, unknown>;
}

/**
 * A signed statement that the chain up to `covers.seq` ended in
 * `covers.hash`. The public key travels with it, so a verifier needs only
 * node:crypto; the key is pinned by its fingerprint across checkpoints.
 */
export interface AuditCheckpoint extends ChainLink {
  type: 'checkpoint';
  time: string;
  covers: { seq: number; hash: string };
  key: {
    /** SHA-256 (hex) of the DER SubjectPublicKeyInfo. */
    fingerprint: string;
    /** DER SubjectPublicKeyInfo, base64. */
    spki: string;
  };
  /** ECDSA P-256 / SHA-256 signature (DER, base64) over {@link checkpointStatement}. */
  signature: string;
}

/** Any entry of the trail. */
export type AuditEntry = AuditCallRecord | AuditCheckpoint;

/** An entry before it is linked into the chain. */
export type UnlinkedEntry = Omit<AuditCallRecord, 'seq' | 'prev'> | Omit<AuditCheckpoint, 'seq' | 'prev'>;

/** SHA-256 (hex) of one line of the trail, without its newline. */
export function lineHash(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('hex');
}

/** Serialises an entry as one line; `seq` and `prev` come first so a reader sees the chain at a glance. */
export function entryLine(entry: AuditEntry): string {
  const { seq, prev, ...rest } = entry;
  return JSON.stringify({ seq, prev, ...rest });
}

/** Parses one line of the trail; undefined when it is not an entry. */
export function parseEntry(line: string): AuditEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entry = value as Record<string, unknown>;
  if (typeof entry['seq'] !== 'number' || !Number.isSafeInteger(entry['seq']) || typeof entry['prev'] !== 'string') return undefined;
  if (entry['type'] === 'call' || entry['type'] === 'checkpoint') return entry as unknown as AuditEntry;
  return undefined;
}
