import type { AuditVerification } from '@hsm-broker/audit';
import { codeName } from '@hsm-broker/errors';
import type { AuditRecord, GetAuditStatusResponse } from '@hsm-broker/client';
import { renderTable } from './text-table.js';

const recordColumns = [
  { header: 'SEQ', align: 'right' as const },
  { header: 'TIME' },
  { header: 'IDENTITY' },
  { header: 'OPERATION' },
  { header: 'KEY' },
  { header: 'RESULT' },
  { header: 'MS', align: 'right' as const },
  { header: 'APPLIANCES' },
  { header: 'REQUEST' },
];

function recordRow(record: AuditRecord): string[] {
  return [
    String(record.seq),
    record.time?.toISOString() ?? '',
    record.identity,
    record.operation,
    record.keyId === '' ? '-' : `${record.keyId}${record.keyVersion > 0 ? ` v${String(record.keyVersion)}` : ''}`,
    record.code === 0 ? 'OK' : `${codeName(record.code)}${record.reason === '' ? '' : ` ${record.reason}`}`,
    record.latencyMs.toFixed(1),
    record.appliances.join(',') || '-',
    record.requestId,
  ];
}

/** Audit records as a table, oldest first. */
export function renderAuditRecords(records: readonly AuditRecord[], truncated: boolean): string {
  if (records.length === 0) return 'No matching audit records.\n';
  const table = renderTable(recordColumns, records.map(recordRow));
  return truncated ? `${table}(older matches left out; raise --limit or narrow the search)\n` : table;
}

/** One record as a line of `audit tail`. */
export function renderAuditLine(record: AuditRecord): string {
  return `${recordRow(record).join('  ')}\n`;
}

/** The verifier's findings, one line each, then a summary. */
export function renderVerification(result: AuditVerification): string {
  const lines = result.problems.map((problem) => `${problem.kind.toUpperCase()}  ${problem.file}:${String(problem.line)}  ${problem.message}`);
  const range = result.lastSeq === 0 ? 'no entries' : `seq ${String(result.firstSeq)} to ${String(result.lastSeq)}`;
  lines.push(
    `${result.ok ? 'OK' : 'FAILED'}: ${String(result.records)} records and ${String(result.checkpoints)} checkpoints (${range}) in ${String(result.files.length)} ${result.files.length === 1 ? 'file' : 'files'}`,
    result.keyFingerprint === undefined ? 'No valid checkpoint: the records are chained but not signed.' : `Signing key: ${result.keyFingerprint}${result.keyPinned ? ' (pinned)' : ''}`,
  );
  if (result.keyFingerprint !== undefined && !result.keyPinned) {
    lines.push('WARNING: the signing key was taken from the file itself; pin it with --key-fingerprint (from `hsmctl audit status`) to rule out a rewritten trail.');
  }
  if (result.unsignedEntries > 0) lines.push(`${String(result.unsignedEntries)} entries after the last checkpoint are covered by the chain only.`);
  return `${lines.join('\n')}\n`;
}

/** GetAuditStatus as text. */
export function renderAuditStatus(status: GetAuditStatusResponse): string {
  const head = [
    `File:             ${status.file}`,
    `Last record:      ${String(status.lastSeq)}`,
    `Last checkpoint:  ${status.lastCheckpointSeq === 0 ? 'none yet' : `covers ${String(status.lastCheckpointSeq)}`}`,
    `Signing key:      ${status.signingKeyFingerprint || 'not ready'}`,
    `Write failures:   ${String(status.writeFailuresTotal)}`,
  ].join('\n');
  if (status.collectors.length === 0) return `${head}\nNo syslog collectors configured.\n`;
  const table = renderTable(
    [{ header: 'COLLECTOR' }, { header: 'TLS' }, { header: 'CONNECTED' }, { header: 'SENT', align: 'right' }, { header: 'BUFFERED', align: 'right' }, { header: 'DROPPED', align: 'right' }, { header: 'LAST ERROR' }],
    status.collectors.map((collector) => [
      collector.address,
      collector.tls ? 'yes' : 'no',
      collector.connected ? 'yes' : 'no',
      String(collector.sentTotal),
      String(collector.bufferedBytes),
      String(collector.droppedTotal),
      collector.lastError || '-',
    ]),
  );
  return `${head}\n\n${table}`;
}
