import { ApplianceState, BreakerState, FaultKind, type GetFleetStatusResponse } from '@hsm-broker/client';
import { BrokerError } from '@hsm-broker/errors';
import { ExitCode, type CommandSpec } from './command.js';
import { enumName } from './enum-names.js';
import { renderTable } from './text-table.js';

/** Requests each appliance had served at the previous refresh, and when that was. */
export interface WatchSample {
  at: number;
  requests: ReadonlyMap<string, number>;
}

/** Takes the counters a later frame computes rates from. */
export function sampleOf(status: GetFleetStatusResponse, at: number): WatchSample {
  return { at, requests: new Map(status.appliances.map((appliance) => [appliance.id, appliance.requestsTotal])) };
}

function rate(now: number, before: number | undefined, seconds: number): string {
  if (before === undefined || seconds <= 0 || now < before) return '-';
  return ((now - before) / seconds).toFixed(1);
}

/**
 * One frame of `fleet watch`: a header, the zones with their healthy count
 * and request rate, and one row per appliance with state, breaker, calls in
 * flight, requests per second since the previous frame, p99 and moving
 * average latency, and injected faults.
 */
export function renderWatchFrame(status: GetFleetStatusResponse, address: string, now: number, previous: WatchSample | undefined): string {
  const seconds = previous ? (now - previous.at) / 1000 : 0;
  const rps = new Map(status.appliances.map((appliance) => [appliance.id, rate(appliance.requestsTotal, previous?.requests.get(appliance.id), seconds)]));
  const fenced = new Set(status.fencedZones);
  const zoneRps = (zone: string): string => {
    if (!previous) return '-';
    const members = status.appliances.filter((appliance) => appliance.zone === zone);
    return members.reduce((sum, appliance) => sum + Number(rps.get(appliance.id) === '-' ? 0 : rps.get(appliance.id)), 0).toFixed(1);
  };
  const healthy = status.appliances.filter((appliance) => appliance.state === ApplianceState.HEALTHY).length;
  const header = `hsm-broker fleet${address ? ` at ${address}` : ''} · ${new Date(now).toISOString().slice(11, 19)} UTC · ${String(healthy)}/${String(status.appliances.length)} healthy · Ctrl-C to quit\n`;
  const zones = renderTable(
    [{ header: 'ZONE' }, { header: 'HEALTHY', align: 'right' }, { header: 'FENCED' }, { header: 'RPS', align: 'right' }],
    [...status.zones]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((zone) => [zone.name === status.localZone ? `${zone.name} (local)` : zone.name, `${String(zone.healthyCount)}/${String(zone.applianceCount)}`, fenced.has(zone.name) ? 'FENCED' : '-', zoneRps(zone.name)]),
  );
  const appliances = renderTable(
    [
      { header: 'APPLIANCE' },
      { header: 'ZONE' },
      { header: 'STATE' },
      { header: 'BREAKER' },
      { header: 'IN-FLIGHT', align: 'right' },
      { header: 'RPS', align: 'right' },
      { header: 'P99 MS', align: 'right' },
      { header: 'EWMA MS', align: 'right' },
      { header: 'FAULTS' },
    ],
    [...status.appliances]
      .sort((a, b) => a.zone.localeCompare(b.zone) || a.id.localeCompare(b.id))
      .map((appliance) => [
        appliance.id,
        appliance.zone,
        enumName(ApplianceState, appliance.state),
        appliance.breakerState === BreakerState.UNSPECIFIED ? '-' : enumName(BreakerState, appliance.breakerState),
        String(appliance.inFlight),
        rps.get(appliance.id) ?? '-',
        appliance.latencyP99Ms.toFixed(1),
        appliance.latencyEwmaMs.toFixed(1),
        appliance.faults.length === 0 ? '-' : appliance.faults.map((fault) => enumName(FaultKind, fault.kind)).join(','),
      ]),
  );
  return `${header}\n${zones}\n${appliances}`;
}

/** On a terminal: home the cursor and clear the screen before each frame. */
const clearScreen = '\x1b[H\x1b[2J';
const hideCursor = '\x1b[?25l';
const showCursor = '\x1b[?25h';

/** `fleet watch`: a refreshing view of the fleet until Ctrl-C. */
export const fleetWatchCommand: CommandSpec = {
  path: ['fleet', 'watch'],
  synopsis: '[--interval-ms N] [--count N]',
  summary: 'Watch zones and appliances live: state, breaker, rps, p99 (Ctrl-C quits)',
  description:
    'Redraws every --interval-ms (default 1000) until interrupted: zones with healthy appliances and requests per ' +
    'second, then each appliance with its state, circuit breaker, calls in flight, requests per second since the ' +
    'previous frame, 99th percentile and moving-average latency of the last minute, and injected faults. On a ' +
    'terminal the screen is redrawn in place; otherwise frames are printed one after another. A broker that stops ' +
    'answering is shown as such and tried again at the next refresh.',
  options: {
    'interval-ms': { type: 'string', valueName: 'N', description: 'Refresh period in milliseconds, 200 to 60000 (default: 1000)' },
    count: { type: 'string', valueName: 'N', description: 'Stop after N frames (default: until interrupted)' },
  },
  async run(context) {
    const { options, io } = context;
    const intervalMs = options.integer('interval-ms', { min: 200, max: 60_000 }) ?? 1000;
    const count = options.integer('count', { min: 1 });
    const address = options.string('address') ?? io.env['HSMB_ADDRESS'] ?? '';
    const terminal = io.stdout.isTTY === true;
    const stop = new AbortController();
    const interrupt = (): void => stop.abort();
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    if (terminal) io.stdout.write(hideCursor);
    let previous: WatchSample | undefined;
    let frames = 0;
    try {
      while (!stop.signal.aborted) {
        let frame: string;
        try {
          const status = await context.client().getFleetStatus();
          const now = Date.now();
          frame = renderWatchFrame(status, address, now, previous);
          previous = sampleOf(status, now);
        } catch (error: unknown) {
          if (stop.signal.aborted) break;
          frame = `hsm-broker fleet${address ? ` at ${address}` : ''} · broker not answering: ${BrokerError.from(error).message}\nTrying again in ${String(intervalMs)} ms. Ctrl-C to quit.\n`;
        }
        io.stdout.write(terminal ? `${clearScreen}${frame}` : `${frame}\n`);
        frames++;
        if (count !== undefined && frames >= count) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalMs);
          stop.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
      if (terminal) io.stdout.write(showCursor);
    }
    return ExitCode.ok;
  },
};
