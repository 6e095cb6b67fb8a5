// Number formats and plain-text tables shared by the printed reports, and
// the JSON writer.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A whole number with thousands separators, or '-'. */
export const count = (value) => (value === null || value === undefined ? '-' : Math.round(value).toLocaleString('en-US'));
/** Milliseconds: two decimals below 10, one above, or '-'. */
export const ms = (value) => (value === null || value === undefined ? '-' : value < 10 ? value.toFixed(2) : value.toFixed(1));
/** A ratio with two decimals, or '-'. */
export const ratio = (value) => (value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(2));
/** A percentage, whole, or '-'. */
export const percent = (value) => (value === null || value === undefined ? '-' : `${Math.round(value)}%`);

/**
 * A plain-text table with a header rule; numbers right-aligned.
 * @param {string[]} header
 * @param {string[][]} rows
 */
export function table(header, rows) {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(' | ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('-|-'), ...rows.map(line)].join('\n');
}

/**
 * Writes the results as JSON (latency arrays are not kept: percentiles are).
 * @param {string} path
 * @param {object} results
 */
export function writeJson(path, results) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}
