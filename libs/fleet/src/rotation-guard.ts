import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { Appliance } from './appliance.js';

// Refusals of drains and fences that would leave nothing serving: with every
// appliance drained or every zone fenced, every call fails, which no
// operator wants from one command. Appliances that are down do not count as
// serving, so a fleet that is already broken cannot lose its last working
// appliance this way either.

/** Throws unless some appliance of `serving` other than `appliance` would still serve. */
export function refuseDrainingLast(serving: readonly Appliance[], appliance: Appliance): void {
  if (serving.length > 0 && serving.every((candidate) => candidate === appliance)) {
    throw new BrokerError(Code.FAILED_PRECONDITION, `appliance_id: draining ${quoteInput(appliance.id)} would leave no appliance serving; undrain or repair another appliance first`, {
      reason: 'LAST_SERVING_APPLIANCE',
      details: { field: 'appliance_id', appliance: appliance.id },
    });
  }
}

/** Throws unless some appliance of `serving` outside `zone` would still serve. */
export function refuseFencingLast(serving: readonly Appliance[], zone: string): void {
  if (serving.length > 0 && serving.every((candidate) => candidate.zone === zone)) {
    throw new BrokerError(Code.FAILED_PRECONDITION, `zone: fencing ${quoteInput(zone)} would leave no zone serving; unfence or repair another zone first`, {
      reason: 'LAST_SERVING_ZONE',
      details: { field: 'zone', zone },
    });
  }
}

/** `zone` when some appliance is in it; NOT_FOUND naming the field otherwise. */
export function knownZone(appliances: readonly Appliance[], zone: string): string {
  if (!appliances.some((appliance) => appliance.zone === zone)) {
    throw new BrokerError(Code.NOT_FOUND, `zone: no appliance is in zone ${quoteInput(zone)}`, { reason: 'ZONE_NOT_FOUND', details: { field: 'zone' } });
  }
  return zone;
}
