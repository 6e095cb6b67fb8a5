import type { Appliance } from './appliance.js';
import type { ApplianceHealth } from './appliance-config.js';
import type { BreakerState } from './appliance-breaker.js';
import type { ActiveFault } from './fault-injection.js';

/** Status of one appliance as operators see it. */
export type ApplianceStatusState = 'HEALTHY' | 'DEGRADED' | 'OPEN' | 'DRAINED' | 'DOWN';

/** A snapshot of one appliance for status output. */
export interface ApplianceSnapshot {
  id: string;
  zone: string;
  state: ApplianceStatusState;
  health: ApplianceHealth;
  breakerState: BreakerState;
  ejectionsTotal: number;
  drained: boolean;
  inFlight: number;
  requestsTotal: number;
  failuresTotal: number;
  latencyEwmaMs: number;
  mechanisms: readonly string[];
  lastError: string;
  workers: number;
  workerRestartsTotal: number;
  faults: readonly ActiveFault[];
}

/** A snapshot of one zone. */
export interface ZoneSnapshot {
  name: string;
  applianceCount: number;
  healthyCount: number;
}

/** A snapshot of the fleet for status output. */
export interface FleetSnapshot {
  localZone: string;
  zones: ZoneSnapshot[];
  appliances: ApplianceSnapshot[];
  fencedZones: string[];
}

/** The operator-facing state of an appliance; `fenced` says whether its zone is fenced. */
export function applianceState(appliance: Appliance, fenced: boolean): ApplianceStatusState {
  if (appliance.drained || fenced) return 'DRAINED';
  if (appliance.health === 'down' || !appliance.available) return 'DOWN';
  if (appliance.breaker.state !== 'closed') return 'OPEN';
  if (appliance.health !== 'healthy' || appliance.weight < 1 || appliance.breaker.consecutiveFailures > 0) return 'DEGRADED';
  return 'HEALTHY';
}

/** A snapshot of one appliance in `state`. */
export function applianceSnapshot(appliance: Appliance, state: ApplianceStatusState): ApplianceSnapshot {
  return {
    id: appliance.id,
    zone: appliance.zone,
    state,
    health: appliance.health,
    breakerState: appliance.breaker.state,
    ejectionsTotal: appliance.breaker.ejections,
    drained: appliance.drained,
    inFlight: appliance.inFlight,
    requestsTotal: appliance.stats.requestsTotal,
    failuresTotal: appliance.stats.failuresTotal,
    latencyEwmaMs: appliance.stats.latencyEwmaMs,
    mechanisms: appliance.mechanisms,
    lastError: appliance.stats.lastError,
    workers: appliance.workerCount,
    workerRestartsTotal: appliance.stats.workerRestartsTotal,
    faults: appliance.faults,
  };
}
