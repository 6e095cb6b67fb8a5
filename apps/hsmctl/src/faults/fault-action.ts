/**
 * The ways a rehearsal breaks part of a fleet. The names follow the
 * container harness (`kill()`, `pause()`, `partitionZone(zone)`, ...), so one
 * scenario file reads the same whatever carries it out.
 */
export const applianceFaultKinds = [
  'kill',
  'stop',
  'start',
  'pause',
  'unpause',
  'partition',
  'heal',
  'slow',
  'zeroize',
] as const;

/** Faults that act on every appliance of one zone. */
export const zoneFaultKinds = ['killZone', 'partitionZone'] as const;

/** Faults that act on the fleet or the broker as a whole. */
export const fleetFaultKinds = ['clear', 'restartBroker'] as const;

/** Every fault kind, in the order help texts list them. */
export const faultKinds = [...applianceFaultKinds, ...zoneFaultKinds, ...fleetFaultKinds] as const;

/** One of {@link faultKinds}. */
export type FaultKindName = (typeof faultKinds)[number];

/** A fault aimed at one appliance; `slow` carries the added delay. */
export type ApplianceFault =
  | { kind: Exclude<(typeof applianceFaultKinds)[number], 'slow'>; appliance: string }
  | { kind: 'slow'; appliance: string; ms: number };

/** A fault aimed at every appliance of a zone. */
export interface ZoneFault {
  kind: (typeof zoneFaultKinds)[number];
  zone: string;
}

/**
 * A fault aimed at the whole target: `clear` undoes every fault in force
 * (restarts what was killed, heals partitions, removes delays); `restartBroker`
 * restarts the broker itself.
 */
export interface FleetFault {
  kind: (typeof fleetFaultKinds)[number];
}

/** One action of a fault schedule or a game-day step. */
export type FaultAction = ApplianceFault | ZoneFault | FleetFault;

/** Whether a string names a fault kind. */
export function isFaultKind(value: string): value is FaultKindName {
  return (faultKinds as readonly string[]).includes(value);
}

/** Whether a fault kind needs an `appliance`. */
export function isApplianceFaultKind(kind: FaultKindName): kind is ApplianceFault['kind'] {
  return (applianceFaultKinds as readonly string[]).includes(kind);
}

/** Whether a fault kind needs a `zone`. */
export function isZoneFaultKind(kind: FaultKindName): kind is ZoneFault['kind'] {
  return (zoneFaultKinds as readonly string[]).includes(kind);
}

/** `pause hsm-a1`, `slow hsm-b2 +200ms`, `killZone az-c`, `clear`: for logs, reports and charts. */
export function describeFault(action: FaultAction): string {
  if ('appliance' in action) {
    return action.kind === 'slow'
      ? `slow ${action.appliance} +${String(action.ms)}ms`
      : `${action.kind} ${action.appliance}`;
  }
  if ('zone' in action) return `${action.kind} ${action.zone}`;
  return action.kind;
}

/**
 * Whether an action takes something out of service (as opposed to bringing
 * it back). A game day measures traffic shift after these and repair after
 * the ones that undo them.
 */
export function isBreakingFault(action: FaultAction): boolean {
  return !['start', 'unpause', 'heal', 'clear'].includes(action.kind);
}
