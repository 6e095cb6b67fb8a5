import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrokerClient } from '@hsm-broker/client';
import { describeFault, isBreakingFault } from '../faults/fault-action.js';
import type { FaultDriver, FleetTopology } from '../faults/fault-driver.js';
import { runFaultTimeline } from '../faults/fault-timeline.js';
import { HistoryWriter, type CallRecord, type FaultRecord, type HistoryRecord } from '../load/call-history.js';
import type { BrokerConnection } from '../load/broker-connection.js';
import { createLoadRunner } from '../load/load-runner.js';
import { wallClockMs } from '../load/mixed-load.js';
import { analyseGameDay, type GameDayAnalysis } from './gameday-analysis.js';
import { FleetSampler } from './fleet-sampler.js';
import { renderLatencyChart, type ChartMark } from './latency-chart.js';
import { renderGameDayMarkdown } from './report-markdown.js';
import { ScenarioError, type GameDayScenario } from './scenario-file.js';

/** What a game day needs besides its scenario. */
export interface GameDayOptions {
  scenario: GameDayScenario;
  client: BrokerClient;
  connection: BrokerConnection;
  driver: FaultDriver;
  topology: FleetTopology;
  /** Directory the report is written to (created). */
  reportDir: string;
  onRecord?: (record: HistoryRecord) => void;
  /** Told when the load starts, with the wall-clock origin. */
  onStart?: (originWallMs: number) => void;
}

/** The report's files and figures. */
export interface GameDayResult {
  analysis: GameDayAnalysis;
  files: { markdown: string; svg: string; json: string; history: string };
}

/**
 * Checks that the driver can carry out every step and that every appliance
 * and zone named exists, before anything is broken: a game day that stops
 * half-way leaves the fleet in a state nobody planned.
 */
export function checkScenarioAgainst(scenario: GameDayScenario, driver: FaultDriver, topology: FleetTopology): void {
  const ids = topology.appliances.map((appliance) => appliance.id);
  const zones = [...new Set(topology.appliances.map((appliance) => appliance.zone))];
  scenario.steps.forEach((step, index) => {
    const field = `steps[${String(index)}]`;
    const reason = driver.unsupported(step.action.kind);
    if (reason !== undefined) throw new ScenarioError(`${field}.fault: the ${driver.name} target cannot: ${reason}`);
    if ('appliance' in step.action && !ids.includes(step.action.appliance)) {
      throw new ScenarioError(`${field}.appliance: '${step.action.appliance}' is not in the fleet (${ids.join(', ')})`);
    }
    if ('zone' in step.action && !zones.includes(step.action.zone)) {
      throw new ScenarioError(`${field}.zone: '${step.action.zone}' is not in the fleet (${zones.join(', ')})`);
    }
  });
}

/**
 * One mark per instant: steps at the same time (a zone brought back
 * appliance by appliance) share a line and a label, the phase name when the
 * file gives one, so that labels never print over each other.
 */
function chartMarks(scenario: GameDayScenario): ChartMark[] {
  const marks: (ChartMark & { named: boolean })[] = [];
  for (const step of scenario.steps) {
    const last = marks.at(-1);
    if (last !== undefined && last.atMs === step.atMs) {
      if (!last.named) last.label = `${last.label}, ${describeFault(step.action)}`;
      last.breaking ||= isBreakingFault(step.action);
      continue;
    }
    marks.push({
      atMs: step.atMs,
      label: step.phase ?? describeFault(step.action),
      breaking: isBreakingFault(step.action),
      named: step.phase !== undefined,
    });
  }
  return marks.map(({ atMs, label, breaking }) => ({ atMs, label, breaking }));
}

/** Runs a game day and writes its report directory. */
export async function runGameDay(options: GameDayOptions): Promise<GameDayResult> {
  const { scenario, driver, topology } = options;
  checkScenarioAgainst(scenario, driver, topology);
  await mkdir(options.reportDir, { recursive: true });
  const files = {
    markdown: join(options.reportDir, 'summary.md'),
    svg: join(options.reportDir, 'latency.svg'),
    json: join(options.reportDir, 'report.json'),
    history: join(options.reportDir, 'history.jsonl'),
  };
  const history = new HistoryWriter(files.history);
  const calls: CallRecord[] = [];
  const faults: FaultRecord[] = [];
  const record = (entry: HistoryRecord): void => {
    history.write(entry);
    if (entry.type === 'call') calls.push(entry);
    else faults.push(entry);
    options.onRecord?.(entry);
  };
  const load = createLoadRunner({
    profile: scenario.load,
    prefix: `gameday/${scenario.name}-${Date.now().toString(36)}`,
    onRecord: record,
    client: options.client,
    connection: options.connection,
  });
  const sampler = new FleetSampler(options.client);
  const startedAt = new Date();
  let originWallMs = 0;
  let shed = 0;
  try {
    await load.prepare();
    sampler.start();
    const originMs = performance.now();
    originWallMs = wallClockMs();
    options.onStart?.(originWallMs);
    load.start();
    const stop = new AbortController();
    const timeline = runFaultTimeline(scenario.steps, driver, { originMs, onRecord: record, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, scenario.durationMs));
    stop.abort();
    await timeline;
    shed = (await load.stop()).shed;
  } finally {
    await driver.restore();
    await sampler.stop();
    await history.close();
  }

  const steps = scenario.steps.map((step) => ({ ...step, explanation: driver.explain(step.action) }));
  const analysis = analyseGameDay({
    originMs: originWallMs,
    durationMs: scenario.durationMs,
    calls,
    faults,
    steps,
    samples: sampler.samples,
    topology,
  });
  const address = options.connection.address;
  await writeFile(files.markdown, renderGameDayMarkdown({ scenario, driver: driver.name, address, startedAt, analysis, shed }));
  await writeFile(
    files.svg,
    renderLatencyChart({
      title: `${scenario.name}: p50/p99 latency over time, failed calls marked (${driver.name} faults)`,
      originMs: originWallMs,
      durationMs: scenario.durationMs,
      calls,
      marks: chartMarks(scenario),
    }),
  );
  await writeFile(
    files.json,
    `${JSON.stringify(
      {
        scenario,
        driver: driver.name,
        address,
        startedAt: startedAt.toISOString(),
        originWallMs,
        steps: steps.map((step) => ({ atMs: step.atMs, step: describeFault(step.action), driverAction: step.explanation })),
        faults,
        analysis,
        shed,
        fleetSamples: sampler.samples,
      },
      null,
      2,
    )}\n`,
  );
  return { analysis, files };
}
