import type { Fleet } from '@hsm-broker/fleet';
import type { KeyRegistry, ReplicaReconciler } from '@hsm-broker/keys';
import type { FleetActivity, FleetEvent } from './fleet-activity.js';
import { bucketMs } from './fleet-activity.js';
import { readinessOf } from './readiness.js';
import type { Readiness } from './readiness.js';
import type { StoreWatch } from './store-watch.js';

/** One appliance as the dashboard draws it. */
export interface ApplianceView {
  id: string;
  zone: string;
  /** HEALTHY, DEGRADED, OPEN, DRAINED or DOWN. */
  state: string;
  breaker: string;
  inFlight: number;
  latencyEwmaMs: number;
  p99Ms: number;
  rps: number;
  /** Calls per second, oldest first, one point per {@link FleetView.bucketSeconds}. */
  traffic: number[];
  sessions: number;
  ejections: number;
  workerRestarts: number;
  /** Kinds of the injected faults in force. */
  faults: string[];
  keyVersions: number;
  versionsMissing: number;
  orphans: number;
  lastError: string;
}

/** One zone as the dashboard draws it. */
export interface ZoneView {
  name: string;
  local: boolean;
  fenced: boolean;
  appliances: number;
  healthy: number;
  rps: number;
}

/** Everything the dashboard page and `fleet watch` show, in one message. */
export interface FleetView {
  at: number;
  bucketSeconds: number;
  readiness: Readiness;
  zones: ZoneView[];
  appliances: ApplianceView[];
  replication: {
    /** `fully replicated`, `versions missing` or `orphans`. */
    state: string;
    versionsMissing: number;
    orphans: number;
    lastReconciledAt: number | undefined;
  };
  events: FleetEvent[];
}

/** What a view is built from. */
export interface FleetViewSources {
  fleet: Fleet;
  registry: KeyRegistry;
  /** The store as last read: the dashboard pushes twice a second and must never wait on the database. */
  watch: StoreWatch;
  reconciler: ReplicaReconciler;
  activity: FleetActivity;
}

/**
 * The fleet as operators watch it: state, breaker, load and latency per
 * appliance, recent traffic, replication and recent events. Holds ids and
 * counts only; no key ids, labels or anything secret, since the admin
 * listener has no authentication of its own.
 */
export function fleetView({ fleet, registry, watch, reconciler, activity }: FleetViewSources): FleetView {
  const snapshot = fleet.snapshot();
  const counts = watch.lastTally()?.replicaCounts ?? new Map<string, number>();
  const appliances = snapshot.appliances.map((appliance): ApplianceView => {
    const traffic = activity.traffic(appliance.id);
    const inventory = reconciler.inventory(appliance.id);
    return {
      id: appliance.id,
      zone: appliance.zone,
      state: appliance.state,
      breaker: appliance.breakerState,
      inFlight: appliance.inFlight,
      latencyEwmaMs: appliance.latencyEwmaMs,
      p99Ms: traffic.p99Ms,
      rps: traffic.rps,
      traffic: traffic.series,
      sessions: appliance.workers,
      ejections: appliance.ejectionsTotal,
      workerRestarts: appliance.workerRestartsTotal,
      faults: appliance.faults.map((fault) => fault.kind),
      keyVersions: counts.get(appliance.id) ?? 0,
      versionsMissing: inventory?.missing ?? 0,
      orphans: inventory?.orphans.length ?? 0,
      lastError: appliance.lastError,
    };
  });
  const versionsMissing = appliances.reduce((sum, appliance) => sum + appliance.versionsMissing, 0);
  const orphans = appliances.reduce((sum, appliance) => sum + appliance.orphans, 0);
  const reconciledAt = fleet.appliances.map((appliance) => reconciler.inventory(appliance.id)?.reconciledAt ?? 0).filter((at) => at > 0);
  return {
    at: Date.now(),
    bucketSeconds: bucketMs / 1000,
    readiness: readinessOf(fleet, registry, watch.current()),
    zones: snapshot.zones.map((zone) => ({
      name: zone.name,
      local: zone.name === snapshot.localZone,
      fenced: snapshot.fencedZones.includes(zone.name),
      appliances: zone.applianceCount,
      healthy: zone.healthyCount,
      rps: appliances.filter((appliance) => appliance.zone === zone.name).reduce((sum, appliance) => sum + appliance.rps, 0),
    })),
    appliances,
    replication: {
      state: versionsMissing > 0 ? 'versions missing' : orphans > 0 ? 'orphans' : 'fully replicated',
      versionsMissing,
      orphans,
      lastReconciledAt: reconciledAt.length === 0 ? undefined : Math.min(...reconciledAt),
    },
    events: activity.events(),
  };
}
