// The failover section: its own broker (3x2 fleet, fault injection), steady
// Sign load, the local zone crashed and then cleared (see failover-run.mjs);
// prints its tables and writes reports/bench-failover.json.
import { relative } from 'node:path';
import { checkBenchCalls, createBenchKeys } from './bench-keys.mjs';
import { writeJson } from './bench-report.mjs';
import { startBroker } from './broker-process.mjs';
import {
  brokerEventLines,
  failoverErrorLines,
  failoverPhaseTable,
  failoverTargetTable,
  latencyTimelineLines,
  methodLines,
  recoveryLines,
  routingLine,
  stateChangeLines,
} from './failover-report.mjs';
import { runFailover } from './failover-run.mjs';
import { makeDataDir, removeDataDir, started } from './run-state.mjs';

/** The failover run's fleet: three zones of two appliances, one session each. */
const failoverFleet = '3x2';

/**
 * @param {{ workspaceRoot: string, modulePath: string, failover: any }} options
 * @param {object} machine
 * @param {string} command
 * @param {(line: string) => void} progress
 */
export async function failoverRun({ workspaceRoot, modulePath, failover: settings }, machine, command, progress) {
  const dataDir = makeDataDir();
  progress(`failover: starting a broker (${failoverFleet} local fleet, ${settings.workersPerAppliance} worker per appliance, fault injection on, data in ${dataDir})`);
  const broker = await startBroker({
    workspaceRoot,
    dataDir,
    localFleet: failoverFleet,
    modulePath,
    workersPerAppliance: settings.workersPerAppliance,
    // A 3x2 fleet on a busy 2-core machine has taken 80 s to start.
    startTimeoutMs: 120_000,
    env: { HSMB_FAULT_INJECTION: '1' },
  });
  started.broker = broker;
  progress(`failover: broker serving on ${broker.address} after ${(broker.startupMs / 1000).toFixed(1)} s: ${broker.appliances.join(', ')}`);
  const keys = await createBenchKeys(broker.address, broker.appliances, ['sign']);
  await checkBenchCalls(broker.address, keys);
  progress(`failover: key ${keys.sign.keyId} on ${keys.sign.replicas.length} appliances, Sign verified; before: ${settings.ratePerSec} calls/s for ${(settings.warmupMs + settings.beforeMs) / 1000} s (warm-up included)`);
  const failover = await runFailover(broker, keys.sign, settings, (line) => progress(`failover ${line}`));
  const brokerLog = broker.logSummary();
  progress('failover: stopping the broker');
  await broker.stop();
  started.broker = undefined;
  removeDataDir(dataDir);

  const results = {
    generatedAt: new Date().toISOString(),
    command,
    machine,
    settings: {
      localFleet: failoverFleet,
      appliances: broker.appliances,
      workersPerAppliance: settings.workersPerAppliance,
      operation: 'Sign ECDSA_SHA_256, P-256 key, 32-byte RAW message',
      ratePerSec: settings.ratePerSec,
      generators: settings.generators,
      callTimeoutMs: settings.callTimeoutMs,
      warmupS: settings.warmupMs / 1000,
      beforeS: settings.beforeMs / 1000,
      duringS: settings.duringMs / 1000,
      afterS: settings.afterMs / 1000,
      pollMs: settings.pollMs,
      fault: { kind: 'CRASH', probability: 0, durationMs: 0, appliances: failover.deadAppliances },
      broker: broker.settings,
    },
    broker: { startupS: Number((broker.startupMs / 1000).toFixed(2)), logWarnings: brokerLog.warnings, logErrors: brokerLog.errors },
    ...failover,
  };
  writeJson(settings.jsonPath, results);
  printFailover(results, brokerLog, settings, workspaceRoot);
}

function printFailover(results, brokerLog, settings, workspaceRoot) {
  const { machine } = results;
  const out = (line = '') => process.stdout.write(`${line}\n`);
  const zones = [...new Set(results.finalStatus.map((appliance) => appliance.zone))];
  const fleet = zones
    .map((zone) => `${zone}${zone === results.deadZone ? ' (local)' : ''}: ${results.finalStatus.filter((appliance) => appliance.zone === zone).map((appliance) => appliance.id).join(', ')}`)
    .join(' | ');
  out();
  out(`hsm-broker failover bench — ${machine.nproc} cores (${machine.cpuModel}), Node ${machine.node}, ${machine.platform}`);
  out(`fleet ${results.settings.localFleet}: ${fleet}; ${results.settings.workersPerAppliance} worker per appliance`);
  out(routingLine(results.settings.broker));
  out(`command: ${results.command}`);
  if (machine.busyBeforeStartPercent !== null && machine.busyBeforeStartPercent > 20) {
    out(`WARNING: the machine was ${Math.round(machine.busyBeforeStartPercent)}% busy (of one core) before the bench started; other work competes with it (see "other CPU" below)`);
  }
  out(
    `load: Sign ECDSA P-256 at ${settings.ratePerSec} calls/s (open loop, ${settings.generators} grpc-js processes), ${settings.callTimeoutMs} ms deadline per call; ` +
      `phases: ${settings.warmupMs / 1000} s warm-up, ${settings.beforeMs / 1000} s before, ${settings.duringMs / 1000} s during ` +
      `(InjectFault CRASH, probability 0, on ${results.deadAppliances.join(' and ')}), ${settings.afterMs / 1000} s after ClearFaults`,
  );
  const instants = results.instants;
  out(
    `InjectFault (both appliances at once) answered ${Math.round(instants.injectAckedMs ?? NaN)} ms after it was sent; ` +
      `ClearFaults sent at +${Math.round(instants.clearFaultsSentMs)} ms, answered at +${Math.round(instants.clearFaultsAckedMs)} ms`,
  );
  out();
  out(failoverPhaseTable(results));
  out();
  out(failoverTargetTable(results));
  out();
  out(`p99 ms per 500 ms of completions (from InjectFault; ClearFaults at +${(results.instants.clearFaultsSentMs / 1000).toFixed(1)}s):`);
  for (const line of latencyTimelineLines(results)) out(`  ${line}`);
  out();
  for (const line of recoveryLines(results)) out(line);
  out();
  out('how this is measured:');
  for (const line of methodLines(results, settings)) out(`  ${line}`);
  out();
  out(`${results.deadZone} as the polls saw it (ms from InjectFault):`);
  for (const line of stateChangeLines(results)) out(`  ${line}`);
  const errors = failoverErrorLines(results);
  if (errors.length) {
    out();
    out('failed calls:');
    for (const line of errors) out(`  ${line}`);
  }
  const events = brokerEventLines(results);
  if (events.length) {
    out();
    out(`broker warnings and errors during the run (${brokerLog.warnings} warnings, ${brokerLog.errors} errors in its whole log):`);
    for (const line of events) out(`  ${line}`);
  }
  out();
  out(`JSON: ${relative(workspaceRoot, settings.jsonPath) || settings.jsonPath}`);
}

