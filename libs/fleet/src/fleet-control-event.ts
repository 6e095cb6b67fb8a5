/** What an operator (or a rehearsal) changed on the fleet. */
export type FleetControlKind = 'drained' | 'undrained' | 'fenced' | 'unfenced' | 'fault-injected' | 'faults-cleared';

/**
 * An operator's change to the fleet, reported once it took effect, so a
 * dashboard can show what a failover rehearsal did next to what the
 * breakers did.
 */
export interface FleetControlEvent {
  kind: FleetControlKind;
  /** The appliance or zone changed; empty when every appliance was (faults cleared fleet-wide). */
  target: string;
  /** The fault's kind, for `fault-injected`. */
  fault?: string;
  at: number;
}

/** Listener for {@link FleetControlEvent}s. Must not throw. */
export type FleetControlListener = (event: FleetControlEvent) => void;
