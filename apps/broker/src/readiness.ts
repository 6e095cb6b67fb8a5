import type { Fleet } from '@hsm-broker/fleet';
import type { KeyRegistry } from '@hsm-broker/keys';
import type { StoreCheck } from './store-watch.js';

/** The answer of `/readyz`: ready or not, and each check behind it. */
export interface Readiness {
  ready: boolean;
  checks: {
    /** The metadata store answered a query recently; `ageMs` is how long ago. */
    metadataStore: StoreCheck;
    /** Appliances serving now (in rotation, breaker closed) against what the durability policy needs. */
    appliances: { ok: boolean; serving: number; required: number };
    /** Zones with a serving appliance against what the durability policy needs. */
    zones: { ok: boolean; serving: number; required: number };
  };
}

/**
 * Whether the broker can serve: its metadata store answered recently (see StoreWatch), and enough
 * appliances in enough zones are serving that a key made now would be
 * durable (the effective durability policy). A broker that can only serve
 * from one appliance is alive (`/healthz`) but not ready.
 */
export function readinessOf(fleet: Fleet, registry: KeyRegistry, metadataStore: StoreCheck): Readiness {
  const serving = fleet.appliances.filter((appliance) => fleet.inRotation(appliance) && appliance.breaker.state === 'closed');
  const policy = registry.effectiveDurability;
  const zones = new Set(serving.map((appliance) => appliance.zone)).size;
  const appliances = { ok: serving.length >= policy.minAppliances, serving: serving.length, required: policy.minAppliances };
  const zoneCheck = { ok: zones >= policy.minZones, serving: zones, required: policy.minZones };
  return { ready: metadataStore.ok && appliances.ok && zoneCheck.ok, checks: { metadataStore, appliances, zones: zoneCheck } };
}
