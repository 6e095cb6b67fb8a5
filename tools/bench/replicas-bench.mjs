#!/usr/bin/env node
// Aggregate throughput of one and of two broker replicas sharing one
// PostgreSQL key store and one fleet (the embedded 3x1 SoftHSM fleet, whose
// token directories both replicas open).
//
//   npx tsc -b apps/broker && node tools/bench/replicas-bench.mjs [--duration 10] [--clients 4] [--concurrency 16]
//
// The same load generators (grpc-load-worker.mjs, closed loop) run against
// one replica, then split evenly over two. PostgreSQL is started privately
// (tools/test/postgres-server.mjs) and removed afterwards. Prints a Markdown
// table and writes reports/replicas-bench.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkBenchCalls, createBenchKeys } from './bench-keys.mjs';
import { cleanEnvironment, startBroker } from './broker-process.mjs';
import { summarize } from './latency-stats.mjs';
import { runMeasuringProcesses } from './measuring-processes.mjs';
import { startCpuWindow, withOther } from './process-cpu.mjs';
import { startPostgres } from '../test/postgres-server.mjs';

const workspaceRoot = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    clients: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    module: { type: 'string', default: '/usr/lib/softhsm/libsofthsm2.so' },
  },
});
const options = {
  durationMs: Number(values.duration) * 1000,
  warmupMs: Number(values.warmup) * 1000,
  clients: Number(values.clients),
  concurrency: Number(values.concurrency),
};
const callTimeoutMs = 5000;
const progress = (line) => process.stderr.write(`replicas bench: ${line}\n`);

/** Closed-loop load for one operation, the generators spread round-robin over `brokers`. */
async function measure(brokers, operation, keyId) {
  let cpu = Promise.resolve({});
  const { reports } = await runMeasuringProcesses({
    script: new URL('./grpc-load-worker.mjs', import.meta.url),
    processes: Array.from({ length: options.clients }, (_, index) => ({
      init: {
        address: brokers[index % brokers.length].address,
        operation,
        keyId,
        concurrency: options.concurrency,
        warmupMs: options.warmupMs,
        durationMs: options.durationMs,
        callTimeoutMs,
        messageBytes: 32,
        plaintextBytes: 1024,
      },
    })),
    baseEnv: cleanEnvironment(),
    readyTimeoutMs: 15_000,
    runTimeoutMs: options.warmupMs + options.durationMs + callTimeoutMs + 10_000,
    onGo: (pids) =>
      (cpu = new Promise((done) => {
        setTimeout(() => {
          const window = startCpuWindow({
            brokerMains: () => brokers.map((broker) => broker.child.pid),
            brokerWorkers: () => brokers.flatMap((broker) => broker.workerPids()),
            loadGenerators: () => pids,
          });
          setTimeout(() => done(withOther(window.close())), options.durationMs);
        }, options.warmupMs);
      })),
  });
  return { ...summarize(reports, options.durationMs), cpu: await cpu };
}

const postgres = await startPostgres({ log: progress });
const dataDir = mkdtempSync(join(os.tmpdir(), 'hsmb-replicas-bench-'));
const started = [];
try {
  const common = { workspaceRoot, dataDir, localFleet: '3x1', modulePath: values.module, workersPerAppliance: 2, startTimeoutMs: 90_000, env: { HSMB_STORE: postgres.url } };
  started.push(await startBroker(common));
  const keys = await createBenchKeys(started[0].address, started[0].appliances);
  await checkBenchCalls(started[0].address, keys);
  started.push(await startBroker(common));
  progress(`replicas serving on ${started.map((broker) => broker.address).join(' and ')}; store ${postgres.url.replace(/:[^:@/]*@/, ':***@')}`);
  const rows = [];
  for (const operation of ['sign', 'encrypt']) {
    for (const count of [1, 2]) {
      progress(`${operation}: ${String(options.clients)} generators x ${String(options.concurrency)} in flight against ${String(count)} replica(s)`);
      const result = await measure(started.slice(0, count), operation, keys[operation].keyId);
      rows.push({ operation, replicas: count, ...result });
    }
  }
  const table = [
    '| operation | replicas | ops/s | p50 ms | p99 ms | errors | broker main CPU % | workers CPU % | generators CPU % |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((row) =>
      [row.operation, row.replicas, Math.round(row.opsPerSec), row.p50Ms?.toFixed(2), row.p99Ms?.toFixed(2), row.errorCount, Math.round(row.cpu.brokerMains ?? 0), Math.round(row.cpu.brokerWorkers ?? 0), Math.round(row.cpu.loadGenerators ?? 0)]
        .map(String)
        .join(' | ')
        .replace(/^/, '| ')
        .replace(/$/, ' |'),
    ),
  ].join('\n');
  console.log(table);
  mkdirSync(join(workspaceRoot, 'reports'), { recursive: true });
  writeFileSync(join(workspaceRoot, 'reports', 'replicas-bench.json'), JSON.stringify({ generatedAt: new Date().toISOString(), cores: os.cpus().length, options, rows: rows.map(({ cpu, ...row }) => ({ ...row, cpu })) }, null, 2));
} finally {
  for (const broker of started.reverse()) await broker.stop().catch(() => undefined);
  postgres.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
