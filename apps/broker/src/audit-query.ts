import type { AuditCallRecord, AuditEntry } from '@hsm-broker/audit';

/** Which outcomes a query keeps. */
export type AuditResultFilter = 'any' | 'ok' | 'denied' | 'failed';

/** Filters of SearchAudit and TailAudit; absent fields match everything. */
export interface AuditQuery {
  identity?: string;
  operation?: string;
  keyId?: string;
  result: AuditResultFilter;
  /** ISO 8601; records at or after it. */
  start?: string;
  /** ISO 8601; records before it. */
  end?: string;
}

/** gRPC codes of a refusal for lack of identity or permission. */
const deniedCodes = new Set([7, 16]);

/** Whether a trail entry is a call record that the query keeps. */
export function matchesQuery(entry: AuditEntry, query: AuditQuery): entry is AuditCallRecord {
  if (entry.type !== 'call') return false;
  if (query.identity !== undefined && entry.identity !== query.identity) return false;
  if (query.operation !== undefined && entry.operation !== query.operation) return false;
  if (query.keyId !== undefined && entry.keyId !== query.keyId) return false;
  if (query.result === 'ok' && entry.code !== 0) return false;
  if (query.result === 'denied' && !deniedCodes.has(entry.code)) return false;
  if (query.result === 'failed' && entry.code === 0) return false;
  // ISO 8601 times in UTC with milliseconds compare as strings.
  if (query.start !== undefined && entry.time < query.start) return false;
  if (query.end !== undefined && entry.time >= query.end) return false;
  return true;
}
