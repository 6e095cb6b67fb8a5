import { describeFault } from '../faults/fault-action.js';
import type { TimedFault } from '../faults/timed-fault.js';
import { loadOperations } from '../load/call-history.js';
import { renderTable } from '../text-table.js';
import type { CheckReport } from './history-checker.js';

/** How many violations the text report lists before it only counts them. */
const shownViolations = 20;

/** The drawn schedule, one line per action: `+12.3s  pause hsm-a1`. */
export function renderSchedule(schedule: readonly TimedFault[]): string {
  if (schedule.length === 0) return 'Schedule: no faults\n';
  const lines = schedule.map((step) => `  +${(step.atMs / 1000).toFixed(1)}s  ${describeFault(step.action)}`);
  return `Schedule (${String(schedule.length)} actions):\n${lines.join('\n')}\n`;
}

/** The check's findings: calls per operation and code, what was read back, every violation. */
export function renderCheckReport(report: CheckReport): string {
  const codes = [...new Set(Object.values(report.results).flatMap((byCode) => Object.keys(byCode)))]
    .filter((code) => code !== 'OK')
    .sort();
  const rows = loadOperations
    .filter((op) => report.results[op] !== undefined)
    .map((op) => {
      const byCode = report.results[op] ?? {};
      const total = Object.values(byCode).reduce((sum, count) => sum + count, 0);
      return [op, String(total), String(byCode['OK'] ?? 0), ...codes.map((code) => String(byCode[code] ?? 0))];
    });
  const table = renderTable(
    [
      { header: 'OPERATION' },
      { header: 'CALLS', align: 'right' },
      { header: 'OK', align: 'right' },
      ...codes.map((code) => ({ header: code, align: 'right' as const })),
    ],
    rows,
  );
  const { checked } = report;
  const lines = [
    table.trimEnd(),
    `Read back: ${String(checked.keys)} keys (${String(checked.rotations)} rotations), ${String(checked.ciphertexts)} ciphertexts, ${String(checked.signatures)} signatures verified with node:crypto`,
    `Failed idempotent calls: ${String(report.failedIdempotent)}; most time the load process's event loop stalled during one call: ${String(report.maxClientLagMs)} ms`,
  ];
  if (report.violations.length === 0) {
    lines.push(`History check: ${String(report.calls)} calls, no violations`);
  } else {
    lines.push(`History check: ${String(report.calls)} calls, ${String(report.violations.length)} VIOLATIONS`);
    for (const violation of report.violations.slice(0, shownViolations)) {
      lines.push(`  ${violation.kind}: ${violation.op} #${String(violation.process)}.${String(violation.seq)} ${violation.keyId}: ${violation.detail}`);
    }
    if (report.violations.length > shownViolations) {
      lines.push(`  ... and ${String(report.violations.length - shownViolations)} more (see --json)`);
    }
  }
  return `${lines.join('\n')}\n`;
}
