import {
  ApplianceState,
  BreakerState,
  FaultKind,
  type ActiveFault,
  type ApplianceStatus,
  type GetFleetStatusResponse,
  type ResyncKeysResponse,
  type ZoneStatus,
} from '@hsm-broker/client';
import { enumName } from './enum-names.js';
import { formatTime } from './key-view.js';
import { printable, renderTable } from './text-table.js';

/**
 * Renders `GetFleetStatus` for a terminal: the zones (the broker's own marked
 * `(local)`, fenced ones marked in FENCED), then the appliances as
 * {@link renderAppliances} shows them.
 */
export function renderFleetStatus(status: GetFleetStatusResponse): string {
  const sections: string[] = [];
  const fenced = new Set(status.fencedZones);
  // A fenced zone that has no appliances (any more) must still show that it is fenced.
  const zones = [
    ...status.zones,
    ...status.fencedZones
      .filter((name) => !status.zones.some((zone) => zone.name === name))
      .map((name): ZoneStatus => ({ name, applianceCount: 0, healthyCount: 0 })),
  ].sort((a, b) => compareText(a.name, b.name));

  if (zones.length > 0) {
    sections.push(
      renderTable(
        [
          { header: 'ZONE' },
          { header: 'APPLIANCES', align: 'right' },
          { header: 'HEALTHY', align: 'right' },
          { header: 'FENCED' },
        ],
        zones.map((zone) => [
          zone.name === status.localZone ? `${zone.name} (local)` : zone.name,
          String(zone.applianceCount),
          String(zone.healthyCount),
          fenced.has(zone.name) ? 'yes' : '-',
        ]),
      ),
    );
  }

  if (status.appliances.length === 0) {
    sections.push('No appliances.\n');
    return sections.join('\n');
  }
  sections.push(renderAppliances(status.appliances));
  return sections.join('\n');
}

/**
 * One row per appliance, sorted by zone and id: state, circuit breaker and
 * how often it opened, whether an operator drained it, load, latency (moving
 * average), key versions held and missing (expected by the registry but not
 * there yet), workers and their restarts. Then the orphans (key objects the
 * registry does not know), the injected faults and the last error of every
 * appliance that has any.
 */
export function renderAppliances(appliances: readonly ApplianceStatus[]): string {
  const sorted = [...appliances].sort((a, b) => compareText(a.zone, b.zone) || compareText(a.id, b.id));
  const sections = [
    renderTable(
      [
        { header: 'APPLIANCE' },
        { header: 'ZONE' },
        { header: 'STATE' },
        { header: 'BREAKER' },
        { header: 'EJECTIONS', align: 'right' },
        { header: 'DRAINED' },
        { header: 'IN-FLIGHT', align: 'right' },
        { header: 'REQUESTS', align: 'right' },
        { header: 'FAILURES', align: 'right' },
        { header: 'LATENCY MS', align: 'right' },
        { header: 'KEYS', align: 'right' },
        { header: 'MISSING', align: 'right' },
        { header: 'WORKERS', align: 'right' },
        { header: 'RESTARTS', align: 'right' },
      ],
      sorted.map((appliance) => [
        appliance.id,
        appliance.zone,
        enumName(ApplianceState, appliance.state),
        // A broker that predates circuit breakers leaves the field unset.
        appliance.breakerState === BreakerState.UNSPECIFIED ? '-' : enumName(BreakerState, appliance.breakerState),
        String(appliance.ejectionsTotal),
        appliance.drained ? 'yes' : '-',
        String(appliance.inFlight),
        String(appliance.requestsTotal),
        String(appliance.failuresTotal),
        appliance.latencyEwmaMs.toFixed(2),
        String(appliance.keysPresent),
        String(appliance.keysMissing),
        String(appliance.workers),
        String(appliance.workerRestartsTotal),
      ]),
    ),
  ];

  const withOrphans = sorted.filter((appliance) => appliance.orphans.length > 0);
  if (withOrphans.length > 0) {
    sections.push(
      'Orphans (key objects the registry does not know; reported, never deleted):\n' +
        withOrphans
          .map(
            (appliance) =>
              `  ${printable(appliance.id)}: ${[...appliance.orphans].sort(compareText).map(printable).join(', ')}\n`,
          )
          .join(''),
    );
  }
  const faulty = sorted.filter((appliance) => appliance.faults.length > 0);
  if (faulty.length > 0) {
    sections.push(
      'Injected faults:\n' +
        faulty
          .flatMap((appliance) =>
            appliance.faults.map((fault) => `  ${printable(appliance.id)}: ${describeFault(fault)}\n`),
          )
          .join(''),
    );
  }
  const errors = sorted.filter((appliance) => appliance.lastError !== '');
  if (errors.length > 0) {
    sections.push(
      'Last errors:\n' +
        errors.map((appliance) => `  ${printable(appliance.id)}: ${printable(appliance.lastError)}\n`).join(''),
    );
  }
  return sections.join('\n');
}

/** `LATENCY 250 ms, probability 0.5, until 2026-01-01T00:00:00Z`. */
export function describeFault(fault: ActiveFault): string {
  const kind = enumName(FaultKind, fault.kind);
  const what = fault.kind === FaultKind.LATENCY ? `${kind} ${String(fault.latencyMs)} ms` : kind;
  // Probability 0 is the proto's "every call", not "never".
  const how = fault.probability === 0 ? 'every call' : `probability ${String(fault.probability)}`;
  // The broker sends no expiry (or the zero timestamp) for "until cleared".
  const until =
    fault.expiresAt === undefined || fault.expiresAt.getTime() === 0
      ? 'until cleared'
      : `until ${formatTime(fault.expiresAt)}`;
  return `${what}, ${how}, ${until}`;
}

/**
 * The outcome of `ResyncKeys`: one summary line
 * (`Checked 3 appliances: copied 2 key versions, 0 lost.`), then the
 * appliances newly enrolled, the orphans and the repairs that failed, each
 * only when there are any.
 */
export function renderResyncReport(report: ResyncKeysResponse): string {
  const lines = [
    `Checked ${plural(report.appliancesChecked, 'appliance')}: ` +
      `copied ${plural(report.copied, 'key version')}, ${String(report.lost)} lost.`,
  ];
  if (report.enrolled.length > 0) {
    lines.push(`Enrolled with the fleet key: ${report.enrolled.map(printable).join(', ')}`);
  }
  if (report.orphans.length > 0) {
    lines.push(`Orphans (reported, never deleted): ${[...report.orphans].sort(compareText).map(printable).join(', ')}`);
  }
  if (report.failures.length > 0) {
    lines.push('Not repaired:', ...report.failures.map((failure) => `  ${printable(failure)}`));
  }
  return lines.join('\n') + '\n';
}

function plural(count: number, noun: string): string {
  return `${String(count)} ${noun}${count === 1 ? '' : 's'}`;
}

/** `Fenced zone az-b: 0 of 1 appliances healthy.` */
export function renderZoneChange(verb: 'Fenced' | 'Unfenced', zone: ZoneStatus): string {
  return `${verb} zone ${printable(zone.name)}: ${String(zone.healthyCount)} of ${String(zone.applianceCount)} appliances healthy.\n`;
}

// Code-unit order, not localeCompare: the same fleet must print the same way
// whatever locale the operator's shell has.
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
