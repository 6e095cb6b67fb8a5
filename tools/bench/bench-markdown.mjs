// reports/bench.md: the results of one run as Markdown, from the results
// object alone (so it can be rendered again from bench.json, and tested with
// fixed input).
import { benchOperations } from './bench-operations.mjs';
import { count, ms, percent } from './bench-report.mjs';

/**
 * A Markdown table.
 * @param {string[]} header
 * @param {string[][]} rows
 */
export function markdownTable(header, rows) {
  const escape = (cell) => String(cell).replace(/\|/g, '\\|');
  return [`| ${header.map(escape).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`)].join('\n');
}

const titleOf = (id) => benchOperations.find((operation) => operation.id === id)?.title ?? id;
const cpuCells = (run) => [percent(run.cpu?.brokerMain), percent(run.cpu?.brokerWorkers), percent(run.cpu?.generator), percent(run.cpu?.other), percent(run.cpu?.machine)];
const cpuHeader = ['main CPU', 'workers CPU', 'generator CPU', 'other CPU', 'machine CPU'];
const failedCell = (run) => (run.failed ? `**${run.failed}**` : '0');
const mib = (bytes) => (bytes === null || bytes === undefined ? '-' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

/**
 * @param {any} results
 * @returns {string}
 */
export function renderMarkdown(results) {
  const { machine, settings } = results;
  const lines = [];
  const out = (line = '') => lines.push(line);
  out('# hsm-broker benchmark report');
  out();
  out(`Generated ${results.generatedAt} by \`${results.command}\` in ${Math.round(results.totalS)} s.`);
  out();
  out(
    `Machine: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}; ` +
      `PKCS#11 ${machine.pkcs11Library ?? 'not loaded'}; ${machine.h2load ?? 'h2load'}.`,
  );
  out(
    `**Load average** at start ${machine.loadAverageAtStart.join(' / ')}, at end ${machine.loadAverageAtEnd?.join(' / ') ?? '-'} (1 / 5 / 15 min); ` +
      `the machine was ${Math.round(machine.busyBeforeStartPercent ?? 0)}% busy (of one core) in the second before the run. ` +
      'Other work on a shared machine takes cores from every run ("other CPU"): the numbers are indicative.',
  );
  out();
  out(
    `Each run: ${settings.warmupS} s warm-up, then ${settings.durationS} s measured. Unary load: h2load -c ${settings.h2load.clients} -m ${settings.h2load.streams} -t ${settings.h2load.threads} ` +
      `(closed loop) posting one fixed gRPC frame. Batch: ${settings.batch.generators} grpc-js processes × ${settings.batch.inFlight} calls of ${settings.batchItems} items in flight. ` +
      `Stream: ${settings.stream.generators} grpc-js processes, one SignStream each with ${settings.stream.inFlight} requests in flight. ` +
      'CPU columns are percent of one core over the measured window, from /proc/PID/stat (main = the broker\'s gRPC process, or the echo server; workers = its appliance worker processes; ' +
      `generator = h2load or the grpc-js processes; machine max ${machine.nproc * 100}%).`,
  );
  out();
  out('![throughput, scaling and memory](bench.svg)');

  if (results.runErrors?.length) {
    out();
    out('## Runs that failed');
    out();
    out('Their figures are missing below, and the targets that need them say "not measured".');
    out();
    for (const { run, message } of results.runErrors) out(`- ${run}: ${message}`);
  }

  if (results.targets?.length) {
    out();
    out('## Targets');
    out();
    out(
      markdownTable(
        ['target', 'measured', 'result', 'saturated first'],
        results.targets.map((outcome) => [outcome.target, outcome.measured, outcome.met === null ? 'not measured' : outcome.met ? 'met' : '**missed**', outcome.saturated ?? '']),
      ),
    );
  }

  if (results.floor) {
    out();
    out('## gRPC floor: trivial grpc-js echo server');
    out();
    out(markdownTable(['server', 'calls/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'failed', 'server CPU', 'generator CPU', 'other CPU', 'machine CPU'], [
      ['echo (same request bytes as Sign ECDSA)', count(results.floor.opsPerSec), ms(results.floor.p50Ms), ms(results.floor.p99Ms), ms(results.floor.p999Ms), failedCell(results.floor), percent(results.floor.cpu.brokerMain), percent(results.floor.cpu.generator), percent(results.floor.cpu.other), percent(results.floor.cpu.machine)],
    ]));
  }

  if (results.broker) {
    const { broker } = results;
    out();
    out(`## Broker: fleet ${broker.fleet}, ${broker.workers} worker processes, ${settings.sessionsPerWorker ?? 1} PKCS#11 session(s) each${settings.applianceLatencyMs ? `, ${settings.applianceLatencyMs} ms injected per appliance call` : ''}`);
    out();
    out(`Started in ${broker.startupS} s. Ops/s counts operations: a batch of ${settings.batchItems} counts ${settings.batchItems}; latency is per call (a batch once).`);
    out();
    const rows = [];
    for (const id of new Set([...Object.keys(broker.unary ?? {}), ...Object.keys(broker.batch ?? {}), ...Object.keys(broker.stream ?? {})])) {
      for (const mode of ['unary', 'batch', 'stream']) {
        const run = broker[mode]?.[id];
        if (!run) continue;
        const floorShare = mode === 'unary' && results.floor ? percent((100 * run.opsPerSec) / results.floor.opsPerSec) : '-';
        const ceiling = results.ceiling?.byOperation?.[id]?.many;
        rows.push([titleOf(id), mode, count(run.opsPerSec), ms(run.p50Ms), ms(run.p99Ms), failedCell(run), floorShare, ceiling ? percent((100 * run.opsPerSec) / ceiling.opsPerSec) : '-', ...cpuCells(run)]);
      }
    }
    out(markdownTable(['operation', 'mode', 'ops/s', 'p50 ms', 'p99 ms', 'failed', 'of echo floor', `of direct (${results.ceiling?.processes ?? '-'} proc)`, ...cpuHeader], rows));
    const failures = Object.entries(broker).flatMap(([mode, runs]) =>
      typeof runs === 'object' && runs ? Object.entries(runs).filter(([, run]) => run?.failures?.length).map(([id, run]) => `- ${titleOf(id)} ${mode}: ${run.failures.slice(0, 3).join('; ')}`) : [],
    );
    if (failures.length) {
      out();
      out('Failed calls:');
      out();
      for (const line of failures) out(line);
    }
  }

  if (results.latency?.length) {
    out();
    out('## Latency at 50% and 90% of peak (open loop, fixed rate)');
    out();
    out(
      `h2load --rps (a fixed rate per connection, ${settings.h2load.clients} connections, up to 256 streams each), latency from the per-request log. ` +
        'Peak is the unary closed-loop rate above.',
    );
    out();
    const rows = [];
    for (const entry of results.latency) {
      for (const point of entry.at) {
        rows.push([entry.title, `${Math.round(point.fraction * 100)}% of ${count(entry.peakOpsPerSec)}`, count(point.targetRatePerSec), count(point.opsPerSec), ms(point.p50Ms), ms(point.p99Ms), ms(point.p999Ms), failedCell(point), ...cpuCells(point)]);
      }
    }
    out(markdownTable(['operation', 'load', 'target calls/s', 'achieved', 'p50 ms', 'p99 ms', 'p99.9 ms', 'failed', ...cpuHeader], rows));
  }

  if (results.soak) {
    const { soak } = results;
    out();
    out(`## Memory: ${soak.durationS} s soak at peak (${titleOf(soak.operation)}, unary)`);
    out();
    out(
      markdownTable(
        ['broker main RSS at start', 'after the soak', 'max', 'growth in the second half', 'workers RSS (sum) start → end', 'ops/s during the soak', 'failed'],
        [
          [
            mib(soak.growth?.startBytes),
            mib(soak.growth?.endBytes),
            mib(soak.growth?.maxBytes),
            soak.growth ? `${(100 * soak.growth.secondHalfGrowth).toFixed(1)}%` : '-',
            `${mib(soak.rss[0]?.workerBytes)} → ${mib(soak.rss[soak.rss.length - 1]?.workerBytes)}`,
            count(soak.run.opsPerSec),
            failedCell(soak.run),
          ],
        ],
      ),
    );
  }

  if (results.ceiling) {
    out();
    out('## Ceiling: pkcs11js straight on the same SoftHSM tokens');
    out();
    out('The broker stopped, its tokens and keys used directly: the same token work per operation as a broker worker (digest, DigestInfo, IV), no gRPC, no IPC.');
    out();
    const rows = [];
    for (const [id, { single, many }] of Object.entries(results.ceiling.byOperation)) {
      rows.push([titleOf(id), count(single.opsPerSec), ms(single.p50Ms), `${count(many.opsPerSec)} (${many.processes} proc)`, ms(many.p50Ms), ms(many.p99Ms), String(single.errorCount + many.errorCount), percent(many.cpu?.measuring), percent(many.cpu?.other)]);
    }
    out(markdownTable(['operation', '1 process ops/s', 'p50 ms', 'N processes ops/s', 'p50 ms', 'p99 ms', 'errors', 'CPU (N proc)', 'other CPU'], rows));
  }

  if (results.scaling?.length) {
    out();
    out('## Scaling with appliances');
    out();
    out(`Sign ECDSA P-256; ${settings.workersPerAppliance} worker processes per appliance, ${settings.sessionsPerWorker ?? 1} session(s) each.`);
    out();
    const rows = [];
    for (const step of results.scaling) {
      for (const mode of ['unary', 'batch']) {
        const run = step[mode];
        rows.push([String(step.appliances), step.fleet, String(step.workers), mode, count(run.opsPerSec), ms(run.p99Ms), failedCell(run), ...cpuCells(run)]);
      }
    }
    out(markdownTable(['appliances', 'fleet', 'workers', 'mode', 'ops/s', 'p99 ms', 'failed', ...cpuHeader], rows));
  }

  out();
  out('## How to read this');
  out();
  out('- Everything runs on the same cores: generators, broker and workers compete, so a figure is what is left after the others took theirs.');
  out('- "saturated first" names the process group nearest its own limit (the broker main process and h2load have one thread each: one core), or the whole machine when every core is busy.');
  out('- h2load reports HTTP status only; failed gRPC calls are counted from the broker\'s `hsmb_rpc_requests_total` by code.');
  out('- Open-loop latency: h2load sends at its rate while it has free streams; with 256 streams per connection it queues only when more than that are outstanding.');
  out('- Verify runs in software in the broker (ADR 0020): it has no pkcs11js ceiling. GenerateDataKey has no batch RPC.');
  out();
  return `${lines.join('\n')}\n`;
}
