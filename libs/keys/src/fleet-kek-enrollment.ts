import { randomUUID } from 'node:crypto';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { OfficerSession } from '@hsm-broker/fleet';
import type { OfficerFleetPort } from './fleet-port.js';
import type { KeyStore } from './key-store.js';

/** The label of the fleet key-encryption key on every appliance. */
export const fleetKekLabel = 'hsmb-fleet-kek';
const kekIdMeta = 'fleet_kek_id';

/** What happened to each appliance during enrollment. */
export interface KekEnrollment {
  kekId: string;
  /** Appliances that hold the fleet KEK now. */
  enrolled: string[];
  /** Appliances that could not be enrolled, with the reason. */
  failed: { applianceId: string; error: string }[];
}

/**
 * Makes sure every reachable appliance holds the fleet KEK. The first
 * appliance of a new fleet generates it; every other appliance receives it
 * wrapped under an RSA enrollment key that appliance generated, which the
 * holder's security officer imports as trusted. The KEK never exists outside
 * an HSM in the clear. An appliance that holds a KEK with another id belongs
 * to another fleet and is refused, never overwritten.
 */
export async function enrollFleetKek(fleet: OfficerFleetPort, store: KeyStore, only?: readonly string[]): Promise<KekEnrollment> {
  // Every reachable appliance is asked, even when only some are to be
  // enrolled: a source that holds the KEK is needed, and a KEK must never be
  // generated twice under one id.
  const candidates = fleet.appliances.filter((appliance) => appliance.available && fleet.hasOfficer(appliance.id));
  const found = new Map<string, string | null>();
  const failed: KekEnrollment['failed'] = [];
  await Promise.all(
    candidates.map(async (appliance) => {
      try {
        found.set(appliance.id, await fleet.withOfficer(appliance.id, (so) => so.call('kekId', { label: fleetKekLabel })));
      } catch (error: unknown) {
        failed.push({ applianceId: appliance.id, error: BrokerError.from(error).message });
      }
    }),
  );

  let kekId = store.getMeta(kekIdMeta);
  const existing = [...new Set([...found.values()].filter((id): id is string => id !== null))];
  let generate = false;
  if (!kekId) {
    // A registry rebuilt from the HSMs adopts the KEK they hold.
    if (existing.length > 1) {
      throw new BrokerError(Code.FAILED_PRECONDITION, `appliances hold different fleet KEKs (${existing.join(', ')}); refusing to choose`, {
        reason: 'KEK_CONFLICT',
      });
    }
    kekId = existing[0] ?? randomUUID();
    generate = existing.length === 0;
    // A new id is recorded only once an HSM holds the KEK: recorded earlier, a
    // first start with every appliance unreachable would leave an id that no
    // HSM holds and that no later start may generate.
    if (!generate) store.setMeta(kekIdMeta, kekId);
  }

  const holders = [...found].filter(([, id]) => id === kekId).map(([applianceId]) => applianceId);
  for (const [applianceId, id] of found) {
    if (id !== null && id !== kekId) failed.push({ applianceId, error: `holds another fleet's KEK ${id}` });
  }
  const missing = [...found]
    .filter(([applianceId, id]) => id === null && (!only || only.includes(applianceId)))
    .map(([applianceId]) => applianceId);
  if (holders.length === 0 && missing.length > 0) {
    if (!generate) {
      for (const applianceId of missing) {
        failed.push({ applianceId, error: `no reachable appliance holds fleet KEK ${kekId} to copy from` });
      }
      return { kekId, enrolled: [], failed };
    }
    const [first] = missing.splice(0, 1) as [string];
    const id = kekId;
    await fleet.withOfficer(first, (so) => so.call('generateKek', { label: fleetKekLabel, kekId: id }));
    store.setMeta(kekIdMeta, kekId);
    holders.push(first);
  }
  const source = holders[0];
  for (const target of missing) {
    if (!source) break;
    try {
      await transferKek(fleet, source, target, kekId);
      holders.push(target);
    } catch (error: unknown) {
      failed.push({ applianceId: target, error: BrokerError.from(error).message });
    }
  }
  return { kekId, enrolled: holders, failed };
}

/** Runs a body with a security-officer session on some HSM. */
export type OfficerAccess = <T>(body: (session: OfficerSession) => Promise<T>) => Promise<T>;

/**
 * Carries a trusted wrapping key from one HSM to another without it ever
 * being in the clear: the receiver makes an RSA enrollment key, the sender's
 * officer imports its public half as trusted and wraps the key under it
 * (RSA-OAEP), and the receiver's officer unwraps it as trusted.
 */
export async function transferTrustedKey(label: string, keyId: string, source: OfficerAccess, target: OfficerAccess): Promise<void> {
  await target(async (receiver) => {
    const enrollmentKey = await receiver.call('createEnrollmentKey', {});
    const wrapped = await source((sender) => sender.call('wrapKekFor', { label, peer: enrollmentKey }));
    await receiver.call('receiveKek', { label, kekId: keyId, wrapped });
  });
}

function transferKek(fleet: OfficerFleetPort, source: string, target: string, kekId: string): Promise<void> {
  return transferTrustedKey(
    fleetKekLabel,
    kekId,
    (body) => fleet.withOfficer(source, body),
    (body) => fleet.withOfficer(target, body),
  );
}
