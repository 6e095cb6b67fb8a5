import type { BrokerClient } from '@hsm-broker/client';
import type { FaultKindName } from '../faults/fault-action.js';
import type { FaultDriver, FleetTopology } from '../faults/fault-driver.js';
import { runFaultTimeline } from '../faults/fault-timeline.js';
import { waitForHealthyFleet } from '../faults/fleet-recovery.js';
import type { TimedFault } from '../faults/timed-fault.js';
import { HistoryWriter, readHistory, type HistoryRecord } from '../load/call-history.js';
import type { BrokerConnection } from '../load/broker-connection.js';
import type { LoadProfile } from '../load/load-profile.js';
import { createLoadRunner } from '../load/load-runner.js';
import type { LoadTotals } from '../load/mixed-load.js';
import { brokerReadBack } from './broker-read-back.js';
import { drawFaultSchedule } from './fault-schedule.js';
import { checkHistory, type CheckOptions, type CheckReport } from './history-checker.js';

/** Everything a chaos run needs. */
export interface ChaosRunOptions {
  client: BrokerClient;
  connection: BrokerConnection;
  driver: FaultDriver;
  topology: FleetTopology;
  seed: number;
  durationMs: number;
  profile: LoadProfile;
  historyPath: string;
  kinds: readonly FaultKindName[];
  multipleZones: boolean;
  check?: CheckOptions;
  /** How long to wait for the fleet to be healthy before checking (default 60 s). */
  recoveryTimeoutMs?: number;
  /** Sees every record as it is written (for the progress line). */
  onRecord?: (record: HistoryRecord) => void;
  /** Told when the schedule is drawn and when the run moves to the check. */
  onStage?: (stage: 'load' | 'restore' | 'check', schedule: readonly TimedFault[]) => void;
}

/** What a chaos run did and found. */
export interface ChaosResult {
  schedule: TimedFault[];
  totals: LoadTotals;
  /** Whether every appliance was healthy again before the check. */
  recovered: boolean;
  report: CheckReport;
}

/**
 * Draws the schedule from the seed, runs the mixed load while the faults
 * happen, writes every call and fault to the history file, puts the fleet
 * back, and checks the history against the broker.
 */
export async function runChaos(options: ChaosRunOptions): Promise<ChaosResult> {
  const schedule = drawFaultSchedule({
    seed: options.seed,
    durationMs: options.durationMs,
    topology: options.topology,
    kinds: options.kinds,
    multipleZones: options.multipleZones,
  });
  const history = new HistoryWriter(options.historyPath);
  const record = (entry: HistoryRecord): void => {
    history.write(entry);
    options.onRecord?.(entry);
  };
  const load = createLoadRunner({
    profile: options.profile,
    prefix: `chaos/${String(options.seed)}-${Date.now().toString(36)}`,
    onRecord: record,
    client: options.client,
    connection: options.connection,
  });
  let totals: LoadTotals;
  try {
    await load.prepare();
    options.onStage?.('load', schedule);
    const originMs = performance.now();
    load.start();
    const stopTimeline = new AbortController();
    const timeline = runFaultTimeline(schedule, options.driver, { originMs, onRecord: record, signal: stopTimeline.signal });
    await new Promise((resolve) => setTimeout(resolve, options.durationMs));
    stopTimeline.abort();
    await timeline;
    totals = await load.stop();
  } finally {
    options.onStage?.('restore', schedule);
    await options.driver.restore();
    await history.close();
  }
  const recovered = await waitForHealthyFleet(options.client, options.recoveryTimeoutMs ?? 60_000);
  options.onStage?.('check', schedule);
  const report = await checkHistory(await readHistory(options.historyPath), brokerReadBack(options.client), options.check);
  return { schedule, totals, recovered, report };
}
