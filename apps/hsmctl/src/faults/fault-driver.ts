import type { FaultAction, FaultKindName } from './fault-action.js';

/** Which appliances exist and where, as the broker reports them. */
export interface FleetTopology {
  readonly appliances: readonly { readonly id: string; readonly zone: string }[];
}

/** The ids of the appliances of one zone, in the broker's order. */
export function appliancesInZone(topology: FleetTopology, zone: string): string[] {
  return topology.appliances.filter((appliance) => appliance.zone === zone).map((appliance) => appliance.id);
}

/**
 * Something that breaks a fleet on purpose: the broker's own fault injection,
 * the Docker engine under a compose fleet, or a container test harness. A
 * driver says which actions it can carry out before any is attempted, so a
 * schedule or scenario it cannot run is refused up front instead of half-way.
 */
export interface FaultDriver {
  /** Short name for reports: `injection`, `docker`, ... */
  readonly name: string;
  /**
   * Why this driver cannot carry out `kind`, or undefined when it can.
   * The reason is shown to the operator as it is.
   */
  unsupported(kind: FaultKindName): string | undefined;
  /**
   * What the driver really does for `action` (`HANG injected on hsm-a1`), for
   * reports: an injected fault is only the nearest thing to some actions.
   */
  explain(action: FaultAction): string;
  /** Carries out one action; rejects when it could not. */
  apply(action: FaultAction): Promise<void>;
  /**
   * Undoes every fault this driver has put in force (restarts, unpauses,
   * reconnects, clears injected faults). Called at the end of every run, also
   * when the run failed; safe to call twice.
   */
  restore(): Promise<void>;
}

/** Thrown when a driver is asked for an action it cannot carry out. */
export class UnsupportedFaultError extends Error {
  override readonly name = 'UnsupportedFaultError';
}
