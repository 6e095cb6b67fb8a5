import type { FaultAction } from './fault-action.js';
import { appliancesInZone, type FleetTopology } from './fault-driver.js';

/** An action at a time, relative to the start of the run. */
export interface TimedFault {
  atMs: number;
  action: FaultAction;
}

/**
 * The actions that undo a breaking one: a killed or stopped appliance is
 * started, a paused one unpaused, a partitioned one healed, a slow one's
 * delay removed (`slow` of 0 ms), a killed or partitioned zone brought back
 * appliance by appliance. A zeroized appliance has nothing to undo: the
 * broker refills it.
 */
export function undoOf(action: FaultAction, topology: FleetTopology): FaultAction[] {
  switch (action.kind) {
    case 'kill':
    case 'stop':
      return [{ kind: 'start', appliance: action.appliance }];
    case 'pause':
      return [{ kind: 'unpause', appliance: action.appliance }];
    case 'partition':
      return [{ kind: 'heal', appliance: action.appliance }];
    case 'slow':
      return action.ms === 0 ? [] : [{ kind: 'slow', appliance: action.appliance, ms: 0 }];
    case 'killZone':
      return appliancesInZone(topology, action.zone).map((appliance) => ({ kind: 'start', appliance }));
    case 'partitionZone':
      return appliancesInZone(topology, action.zone).map((appliance) => ({ kind: 'heal', appliance }));
    case 'zeroize':
    case 'start':
    case 'unpause':
    case 'heal':
    case 'clear':
    case 'restartBroker':
      return [];
  }
}
