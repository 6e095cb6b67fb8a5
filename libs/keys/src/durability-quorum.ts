import { BrokerError, Code } from '@hsm-broker/errors';
import type { ReplicaTarget } from './fleet-port.js';
import type { DurabilityPolicy } from './registry-options.js';

/**
 * The policy in force for a fleet: a policy asking for more appliances or
 * zones than are configured is lowered to what the fleet can ever satisfy,
 * so a one-appliance development fleet still creates keys.
 */
export function effectiveDurability(policy: DurabilityPolicy, appliances: readonly ReplicaTarget[]): DurabilityPolicy {
  const zones = new Set(appliances.map((appliance) => appliance.zone)).size;
  return {
    minAppliances: Math.min(policy.minAppliances, appliances.length),
    minZones: Math.min(policy.minZones, zones),
  };
}

/**
 * Refuses with DURABILITY_QUORUM_NOT_MET (UNAVAILABLE, retryable) unless
 * `holders` are at least `policy.minAppliances` appliances spread over at
 * least `policy.minZones` zones. `when` says in the message at which step
 * the quorum was missed.
 */
export function checkQuorum(holders: readonly string[], zoneOf: (applianceId: string) => string, policy: DurabilityPolicy, when: string): void {
  const zones = new Set(holders.map(zoneOf));
  if (holders.length < policy.minAppliances || zones.size < policy.minZones) {
    throw new BrokerError(
      Code.UNAVAILABLE,
      `durability quorum not reached ${when}: ${String(holders.length)} appliance(s) in ${String(zones.size)} zone(s) can hold the key, policy needs ${String(policy.minAppliances)} in ${String(policy.minZones)}`,
      { reason: 'DURABILITY_QUORUM_NOT_MET', failureClass: 'appliance', retryable: true },
    );
  }
}
