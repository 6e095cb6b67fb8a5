import { ApplianceState, type GetFleetStatusResponse } from '@hsm-broker/client';
import { enumName } from './enum-names.js';
import { printable, renderTable } from './text-table.js';

/**
 * Renders `GetFleetStatus` for a terminal: the zones (the broker's own marked
 * `(local)`), then one row per appliance sorted by zone and id, then the last
 * error of every appliance that has one.
 */
export function renderFleetStatus(status: GetFleetStatusResponse): string {
  const sections: string[] = [];

  if (status.zones.length > 0) {
    const zones = [...status.zones].sort((a, b) => compareText(a.name, b.name));
    sections.push(
      renderTable(
        [{ header: 'ZONE' }, { header: 'APPLIANCES', align: 'right' }, { header: 'HEALTHY', align: 'right' }],
        zones.map((zone) => [
          zone.name === status.localZone ? `${zone.name} (local)` : zone.name,
          String(zone.applianceCount),
          String(zone.healthyCount),
        ]),
      ),
    );
  }

  if (status.appliances.length === 0) {
    sections.push('No appliances.\n');
    return sections.join('\n');
  }

  const appliances = [...status.appliances].sort(
    (a, b) => compareText(a.zone, b.zone) || compareText(a.id, b.id),
  );
  sections.push(
    renderTable(
      [
        { header: 'APPLIANCE' },
        { header: 'ZONE' },
        { header: 'STATE' },
        { header: 'IN-FLIGHT', align: 'right' },
        { header: 'REQUESTS', align: 'right' },
        { header: 'FAILURES', align: 'right' },
        { header: 'LATENCY MS', align: 'right' },
        { header: 'KEYS', align: 'right' },
        { header: 'WORKERS', align: 'right' },
        { header: 'RESTARTS', align: 'right' },
      ],
      appliances.map((appliance) => [
        appliance.id,
        appliance.zone,
        enumName(ApplianceState, appliance.state),
        String(appliance.inFlight),
        String(appliance.requestsTotal),
        String(appliance.failuresTotal),
        appliance.latencyEwmaMs.toFixed(2),
        String(appliance.keysPresent),
        String(appliance.workers),
        String(appliance.workerRestartsTotal),
      ]),
    ),
  );

  const errors = appliances.filter((appliance) => appliance.lastError !== '');
  if (errors.length > 0) {
    sections.push(
      'Last errors:\n' +
        errors.map((appliance) => `  ${printable(appliance.id)}: ${printable(appliance.lastError)}\n`).join(''),
    );
  }
  return sections.join('\n');
}

// Code-unit order, not localeCompare: the same fleet must print the same way
// whatever locale the operator's shell has.
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
