import type { Fleet } from '@hsm-broker/fleet';
import type { KeyRegistry } from '@hsm-broker/keys';
import { ApplianceState } from '@hsm-broker/proto';
import type { FleetServiceServer } from '@hsm-broker/proto';
import type { Logger } from './logger.js';
import { unary } from './unary-handler.js';

const stateOf = {
  starting: ApplianceState.DEGRADED,
  healthy: ApplianceState.HEALTHY,
  degraded: ApplianceState.DEGRADED,
  down: ApplianceState.DOWN,
} as const;

/** FleetService: what the broker knows about its appliances. */
export function fleetService(fleet: Fleet, registry: KeyRegistry, log: Logger): FleetServiceServer {
  return {
    getFleetStatus: unary('GetFleetStatus', log, () => {
      const counts = registry.replicaCounts();
      const snapshot = fleet.snapshot();
      return {
        localZone: snapshot.localZone,
        zones: snapshot.zones,
        appliances: snapshot.appliances.map((appliance) => ({
          id: appliance.id,
          zone: appliance.zone,
          state: stateOf[appliance.health],
          inFlight: appliance.inFlight,
          requestsTotal: appliance.requestsTotal,
          failuresTotal: appliance.failuresTotal,
          latencyEwmaMs: appliance.latencyEwmaMs,
          keysPresent: counts.get(appliance.id) ?? 0,
          mechanisms: [...appliance.mechanisms],
          lastError: appliance.lastError,
          workers: appliance.workers,
          workerRestartsTotal: appliance.workerRestartsTotal,
        })),
      };
    }),
  };
}
