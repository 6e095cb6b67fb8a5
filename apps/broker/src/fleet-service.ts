import { BrokerError } from '@hsm-broker/errors';
import type { ApplianceSnapshot, FaultKind as DomainFaultKind, Fleet } from '@hsm-broker/fleet';
import type { KeyRegistry, ReplicaReconciler } from '@hsm-broker/keys';
import { ApplianceState, BreakerState, FaultKind } from '@hsm-broker/proto';
import type { ApplianceStatus, FleetServiceServer } from '@hsm-broker/proto';
import type { CallPipeline } from './call-pipeline.js';
import { unary } from './unary-handler.js';

const breakerStates = { closed: BreakerState.CLOSED, open: BreakerState.OPEN, 'half-open': BreakerState.HALF_OPEN } as const;
const faultKinds: Record<DomainFaultKind, FaultKind> = {
  ERROR: FaultKind.ERROR,
  LATENCY: FaultKind.LATENCY,
  HANG: FaultKind.HANG,
  CRASH: FaultKind.CRASH,
};

/** The 99th percentile latency of an appliance's recent caller calls, in ms (see FleetActivity). */
export type LatencyP99 = (applianceId: string) => number;

function statusOf(snapshot: ApplianceSnapshot, keysPresent: number, reconciler: ReplicaReconciler, enrolled: ReadonlySet<string>, p99: LatencyP99): ApplianceStatus {
  const inventory = reconciler.inventory(snapshot.id);
  return {
    id: snapshot.id,
    zone: snapshot.zone,
    state: ApplianceState[snapshot.state],
    inFlight: snapshot.inFlight,
    requestsTotal: snapshot.requestsTotal,
    failuresTotal: snapshot.failuresTotal,
    latencyEwmaMs: snapshot.latencyEwmaMs,
    keysPresent,
    mechanisms: [...snapshot.mechanisms],
    lastError: snapshot.lastError,
    workers: snapshot.workers,
    workerRestartsTotal: snapshot.workerRestartsTotal,
    breakerState: breakerStates[snapshot.breakerState],
    ejectionsTotal: snapshot.ejectionsTotal,
    drained: snapshot.drained,
    faults: snapshot.faults.map((fault) => ({
      kind: faultKinds[fault.kind],
      probability: fault.probability,
      latencyMs: fault.latencyMs,
      expiresAt: fault.expiresAt === undefined ? undefined : new Date(fault.expiresAt),
    })),
    keysMissing: inventory?.missing ?? 0,
    orphans: inventory?.orphans ?? [],
    lastReconciledAt: inventory ? new Date(inventory.reconciledAt) : undefined,
    enrolled: enrolled.has(snapshot.id),
    latencyP99Ms: p99(snapshot.id),
  };
}

function required(value: string, field: string): string {
  if (value === '') throw BrokerError.invalidArgument(field, 'is required', 'MISSING_FIELD');
  return value;
}

function faultKindOf(kind: FaultKind): DomainFaultKind {
  const name = FaultKind[kind];
  if (name === 'ERROR' || name === 'LATENCY' || name === 'HANG' || name === 'CRASH') return name;
  throw BrokerError.invalidArgument('kind', `${String(kind)} is not a valid value; use one of ERROR, LATENCY, HANG, CRASH`, 'INVALID_ENUM_VALUE');
}

/** An appliance's operator-visible state, for before/after audit records. */
function controlStateOf(snapshot: ApplianceSnapshot): Record<string, unknown> {
  return { state: snapshot.state, drained: snapshot.drained, faults: snapshot.faults.map((fault) => fault.kind) };
}

/** FleetService: fleet status and operator controls. */
export function fleetService(
  fleet: Fleet,
  registry: KeyRegistry,
  reconciler: ReplicaReconciler,
  enrolled: ReadonlySet<string>,
  pipeline: CallPipeline,
  p99: LatencyP99 = () => 0,
): FleetServiceServer {
  const { log } = pipeline;
  const applianceState = (id: string): Record<string, unknown> => controlStateOf(fleet.applianceSnapshot(fleet.appliance(id)));
  const fencedZones = (): Record<string, unknown> => ({ fencedZones: [...fleet.snapshot().fencedZones] });
  const applianceStatus = (id: string): ApplianceStatus =>
    statusOf(fleet.applianceSnapshot(fleet.appliance(id)), registry.replicaCounts().get(id) ?? 0, reconciler, enrolled, p99);
  return {
    getFleetStatus: unary('GetFleetStatus', pipeline, () => {
      const counts = registry.replicaCounts();
      const snapshot = fleet.snapshot();
      return {
        localZone: snapshot.localZone,
        zones: snapshot.zones,
        appliances: snapshot.appliances.map((appliance) => statusOf(appliance, counts.get(appliance.id) ?? 0, reconciler, enrolled, p99)),
        fencedZones: snapshot.fencedZones,
      };
    }),
    drainAppliance: unary('DrainAppliance', pipeline, (request, { facts }) => {
      const id = required(request.applianceId, 'appliance_id');
      facts.before = applianceState(id);
      fleet.drain(id);
      facts.after = applianceState(id);
      log.warn('appliance drained', { appliance: id });
      return { appliance: applianceStatus(id) };
    }),
    undrainAppliance: unary('UndrainAppliance', pipeline, (request, { facts }) => {
      const id = required(request.applianceId, 'appliance_id');
      facts.before = applianceState(id);
      fleet.undrain(id);
      facts.after = applianceState(id);
      log.warn('appliance returned to rotation', { appliance: id });
      return { appliance: applianceStatus(id) };
    }),
    fenceZone: unary('FenceZone', pipeline, (request, { facts }) => {
      facts.before = fencedZones();
      const zone = fleet.fence(required(request.zone, 'zone'));
      facts.after = fencedZones();
      log.warn('zone fenced', { zone: zone.name });
      return { zone };
    }),
    unfenceZone: unary('UnfenceZone', pipeline, (request, { facts }) => {
      facts.before = fencedZones();
      const zone = fleet.unfence(required(request.zone, 'zone'));
      facts.after = fencedZones();
      log.warn('zone returned to rotation', { zone: zone.name });
      return { zone };
    }),
    injectFault: unary('InjectFault', pipeline, (request, { facts }) => {
      const id = required(request.applianceId, 'appliance_id');
      const kind = faultKindOf(request.kind);
      facts.before = applianceState(id);
      fleet.injectFault(id, { kind, probability: request.probability, latencyMs: request.latencyMs, durationMs: request.durationMs });
      facts.after = applianceState(id);
      log.warn('fault injected', { appliance: id, kind, probability: request.probability, latencyMs: request.latencyMs, durationMs: request.durationMs });
      return { appliance: applianceStatus(id) };
    }),
    resyncKeys: unary('ResyncKeys', pipeline, async (request, { facts }) => {
      const only = request.applianceId === '' ? undefined : [fleet.appliance(request.applianceId).id];
      const report = await reconciler.reconcile(only);
      facts.after = { copied: report.copied, lost: report.lost, failures: report.failures.length };
      log.info('resync finished', { appliance: request.applianceId || '(all)', copied: report.copied, lost: report.lost, failures: report.failures.length });
      return report;
    }),
    clearFaults: unary('ClearFaults', pipeline, (request, { facts }) => {
      const faults = (): Record<string, unknown> => ({ faults: fleet.snapshot().appliances.reduce((total, appliance) => total + appliance.faults.length, 0) });
      facts.before = faults();
      const cleared = fleet.clearFaults(request.applianceId);
      facts.after = faults();
      log.warn('faults cleared', { appliance: request.applianceId || '(all)', cleared });
      return { cleared };
    }),
  };
}
