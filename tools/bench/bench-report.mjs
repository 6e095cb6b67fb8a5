// Renders the results: a table for people, JSON for tools and for comparing runs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A whole number with thousands separators, or '-'. */
export const count = (value) => (value === null || value === undefined ? '-' : Math.round(value).toLocaleString('en-US'));
/** Milliseconds: two decimals below 10, one above, or '-'. */
export const ms = (value) => (value === null || value === undefined ? '-' : value < 10 ? value.toFixed(2) : value.toFixed(1));
const ratio = (value) => (value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(2));
const percent = (value) => (value === null || value === undefined ? '-' : `${Math.round(value)}%`);

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

/** The main table: broker against direct PKCS#11 with as many processes as the broker has workers. */
export function resultsTable(results) {
  const sameCount = results.scenarios[0]?.direct.processes ?? 0;
  return table(
    ['operation', 'broker ops/s', 'p50 ms', 'p99 ms', 'errors', `direct ops/s (${sameCount} proc)`, 'ratio broker/direct', 'direct ops/s (1 proc)'],
    results.scenarios.map((scenario) => [
      scenario.title,
      count(scenario.broker.opsPerSec),
      ms(scenario.broker.p50Ms),
      ms(scenario.broker.p99Ms),
      String(scenario.broker.errorCount),
      count(scenario.direct.opsPerSec),
      ratio(scenario.ratioBrokerToDirect),
      count(scenario.directSingle.opsPerSec),
    ]),
  );
}

/** Latency of the direct runs, for comparing with the broker's p50/p99. */
export function directLatencyTable(results) {
  return table(
    ['operation', 'direct p50 ms', 'direct p99 ms', 'errors', '1 proc p50 ms', '1 proc p99 ms', 'errors'],
    results.scenarios.map((scenario) => [
      scenario.title,
      ms(scenario.direct.p50Ms),
      ms(scenario.direct.p99Ms),
      String(scenario.direct.errorCount),
      ms(scenario.directSingle.p50Ms),
      ms(scenario.directSingle.p99Ms),
      String(scenario.directSingle.errorCount),
    ]),
  );
}

/**
 * CPU milliseconds per completed operation for some groups of a window.
 * @param {Record<string, number | null>} cpu percent of one core per group
 * @param {string[]} groups
 * @param {number} opsPerSec
 */
function cpuMsPerOp(cpu, groups, opsPerSec) {
  if (!opsPerSec || groups.some((group) => cpu[group] === null || cpu[group] === undefined)) return null;
  return (10 * groups.reduce((sum, group) => sum + /** @type {number} */ (cpu[group]), 0)) / opsPerSec;
}

/** Where the CPU went in each measured window, in percent of one core, and what one operation cost. */
export function cpuTable(results) {
  const cores = results.machine.nproc;
  const rows = [];
  for (const scenario of results.scenarios) {
    const { broker, direct, directSingle } = scenario;
    rows.push([
      `${scenario.operation} via broker`,
      percent(broker.cpu.brokerMain),
      percent(broker.cpu.brokerWorkers),
      percent(broker.cpu.loadGenerators),
      '-',
      percent(broker.cpu.other),
      percent(broker.cpu.machine),
      ms(cpuMsPerOp(broker.cpu, ['brokerMain', 'brokerWorkers'], broker.opsPerSec)),
      ms(cpuMsPerOp(broker.cpu, ['loadGenerators'], broker.opsPerSec)),
    ]);
    for (const [label, run] of [[`${direct.processes} proc`, direct], ['1 proc', directSingle]]) {
      rows.push([`${scenario.operation} direct (${label})`, '-', '-', '-', percent(run.cpu.measuring), percent(run.cpu.other), percent(run.cpu.machine), ms(cpuMsPerOp(run.cpu, ['measuring'], run.opsPerSec)), '-']);
    }
  }
  return table(
    ['window', 'broker gRPC process', 'broker workers', 'load generators', 'direct processes', 'other processes', `machine (max ${cores * 100}%)`, 'server CPU ms/op', 'client CPU ms/op'],
    rows,
  );
}

/** Errors seen, with a few messages, so a failing run explains itself. */
export function errorLines(results) {
  const lines = [];
  for (const scenario of results.scenarios) {
    for (const [run, summary] of [['broker', scenario.broker], ['direct', scenario.direct], ['direct 1 proc', scenario.directSingle]]) {
      if (summary.errorCount === 0) continue;
      lines.push(`${scenario.operation} ${run}: ${summary.errorCount} errors ${JSON.stringify(summary.errors)}`);
      for (const sample of summary.errorSamples) lines.push(`    e.g. ${sample}`);
    }
  }
  return lines;
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
