import { status as grpcStatus } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Fleet, RoutedCall } from '@hsm-broker/fleet';
import type { KeyRegistry, KeyState, ReplicaReconciler, SweepReport } from '@hsm-broker/keys';
import type { ApplianceCallSample } from '@hsm-broker/fleet';
import type { ReconcileReport, ReconcileTrigger } from '@hsm-broker/keys';
import type { StoreWatch } from './store-watch.js';

/** What the metrics read: the fleet, the key registry, the store (through its watch), and the reconciler. */
export interface MetricSources {
  fleet: Fleet;
  registry: KeyRegistry;
  watch: StoreWatch;
  reconciler: ReplicaReconciler;
}

const secondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const keyStates: readonly KeyState[] = ['ENABLED', 'DISABLED', 'PENDING_DELETION'];
const breakerStates = ['closed', 'open', 'half-open'] as const;
const applianceStates = ['HEALTHY', 'DEGRADED', 'OPEN', 'DRAINED', 'DOWN'] as const;
/** How far back the zone traffic share looks. */
const shareWindowMs = 60_000;

/** gRPC status names by number (`OK`, `NOT_FOUND`, …), so a dashboard reads codes without a table. */
function codeName(code: number): string {
  return (grpcStatus as unknown as Record<number, string | undefined>)[code] ?? String(code);
}

/**
 * The broker's Prometheus metrics (prom-client), all named `hsmb_…` in base
 * units. Counters are fed by the fleet's and reconciler's own events
 * (routed calls, finished appliance calls, breaker changes, reconciliation
 * runs, sweeps); gauges read the fleet when scraped, so a scrape shows the
 * state of that moment. Gauges from the key store come through the
 * StoreWatch: fresh when the store answers within its bound, else the last
 * values, with `hsmb_key_store_answer_age_seconds` saying how old they are.
 */
export class BrokerMetrics {
  /** The registry `/metrics` serialises. */
  readonly registry = new Registry();
  readonly #sources: MetricSources;
  readonly #rpcRequests: Counter<'method' | 'code'>;
  readonly #rpcDuration: Histogram<'method' | 'code'>;
  readonly #applianceRequests: Counter<'appliance' | 'zone' | 'traffic'>;
  readonly #applianceFailures: Counter<'appliance' | 'zone' | 'class' | 'traffic'>;
  readonly #applianceDuration: Histogram<'appliance' | 'zone'>;
  readonly #queueWait: Histogram<'appliance' | 'zone'>;
  readonly #ejections: Counter<'appliance' | 'zone'>;
  readonly #breakerTransitions: Counter<'appliance' | 'zone' | 'state'>;
  readonly #routedCalls: Counter<'operation' | 'result'>;
  readonly #retries: Counter<'operation'>;
  readonly #hedges: Counter<'operation'>;
  readonly #zoneAnswered: Counter<'zone'>;
  readonly #reconcilerRuns: Counter<'trigger'>;
  readonly #reconcilerCopies: Counter;
  readonly #reconcilerLost: Counter;
  readonly #reconcilerFailures: Counter;
  readonly #sweeps: Counter<'kind'>;
  readonly #sweepFailures: Counter<'kind'>;
  /** Zones of answered calls with when they were answered, for the traffic share. */
  readonly #recentAnswers: { at: number; zone: string }[] = [];

  constructor(sources: MetricSources) {
    this.#sources = sources;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'hsmb_' });
    this.#rpcRequests = new Counter({ name: 'hsmb_rpc_requests_total', help: 'gRPC calls answered, by method and status code (allowed or refused)', labelNames: ['method', 'code'], registers });
    this.#rpcDuration = new Histogram({ name: 'hsmb_rpc_duration_seconds', help: 'Time from a gRPC call arriving to its answer, by method and status code', labelNames: ['method', 'code'], buckets: secondsBuckets, registers });
    this.#applianceRequests = new Counter({
      name: 'hsmb_appliance_requests_total',
      help: 'Calls finished on an appliance; traffic is "caller" for requests and "background" for probes and replication',
      labelNames: ['appliance', 'zone', 'traffic'],
      registers,
    });
    this.#applianceFailures = new Counter({
      name: 'hsmb_appliance_failures_total',
      help: 'Calls on an appliance that failed, by failure class (appliance, caller, overload, deadline, internal)',
      labelNames: ['appliance', 'zone', 'class', 'traffic'],
      registers,
    });
    this.#applianceDuration = new Histogram({ name: 'hsmb_appliance_call_duration_seconds', help: "Time of a caller's call on one appliance, session wait included", labelNames: ['appliance', 'zone'], buckets: secondsBuckets, registers });
    this.#queueWait = new Histogram({ name: 'hsmb_appliance_queue_wait_seconds', help: 'Time a call waited for a free session (worker) on an appliance', labelNames: ['appliance', 'zone'], buckets: secondsBuckets, registers });
    this.#ejections = new Counter({ name: 'hsmb_appliance_breaker_ejections_total', help: "Times an appliance's circuit breaker opened (the appliance left rotation)", labelNames: ['appliance', 'zone'], registers });
    this.#breakerTransitions = new Counter({ name: 'hsmb_appliance_breaker_transitions_total', help: 'Circuit breaker state changes, by the state entered', labelNames: ['appliance', 'zone', 'state'], registers });
    this.#routedCalls = new Counter({ name: 'hsmb_routed_calls_total', help: 'Calls the router settled, by operation and result (answered or failed)', labelNames: ['operation', 'result'], registers });
    this.#retries = new Counter({ name: 'hsmb_retries_total', help: 'Attempts sent to another appliance after an appliance fault', labelNames: ['operation'], registers });
    this.#hedges = new Counter({ name: 'hsmb_hedges_total', help: 'Hedged attempts: a second appliance asked while the first was slow', labelNames: ['operation'], registers });
    this.#zoneAnswered = new Counter({ name: 'hsmb_zone_calls_answered_total', help: "Calls whose answer came from an appliance in the zone", labelNames: ['zone'], registers });
    this.#reconcilerRuns = new Counter({ name: 'hsmb_reconciler_runs_total', help: 'Replica reconciliation runs, by trigger', labelNames: ['trigger'], registers });
    this.#reconcilerCopies = new Counter({ name: 'hsmb_reconciler_copies_total', help: 'Key versions the reconciler copied to an appliance that lacked them', registers });
    this.#reconcilerLost = new Counter({ name: 'hsmb_reconciler_lost_replicas_total', help: 'Replicas the reconciler found gone from an appliance and forgot', registers });
    this.#reconcilerFailures = new Counter({ name: 'hsmb_reconciler_failures_total', help: 'Failures reported by reconciliation runs', registers });
    this.#sweeps = new Counter({ name: 'hsmb_sweeps_total', help: 'Deletion and rotation sweeps run', labelNames: ['kind'], registers });
    this.#sweepFailures = new Counter({ name: 'hsmb_sweep_failures_total', help: 'Things a sweep left for the next one', labelNames: ['kind'], registers });
    this.#scrapedMetrics();
  }

  /** Subscribes to the fleet's and reconciler's events. Call once, before traffic. */
  observe(): void {
    const { fleet, reconciler } = this.#sources;
    fleet.onCallRouted((call) => this.#routed(call));
    for (const appliance of fleet.appliances) {
      appliance.onCallFinished((sample) => this.#applianceCall(sample));
      const labels = { appliance: appliance.id, zone: appliance.zone };
      appliance.breaker.onStateChange((state) => {
        this.#breakerTransitions.inc({ ...labels, state });
        if (state === 'open') this.#ejections.inc(labels);
      });
      this.#ejections.inc(labels, 0);
    }
    reconciler.onReconciled((trigger, report) => this.#reconciled(trigger, report));
  }

  /** Records one answered gRPC call (the call pipeline's `finished` step). */
  rpcFinished(method: string, code: number, latencyMs: number): void {
    const labels = { method, code: codeName(code) };
    this.#rpcRequests.inc(labels);
    this.#rpcDuration.observe(labels, latencyMs / 1000);
  }

  /** Records one sweep. */
  sweepFinished(kind: 'deletion' | 'rotation', report: SweepReport): void {
    this.#sweeps.inc({ kind });
    this.#sweepFailures.inc({ kind }, report.failures.length);
  }

  /** The Prometheus text exposition. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  #applianceCall(sample: ApplianceCallSample): void {
    const traffic = sample.background ? 'background' : 'caller';
    const labels = { appliance: sample.applianceId, zone: sample.zone };
    this.#applianceRequests.inc({ ...labels, traffic });
    if (sample.outcome !== 'ok') this.#applianceFailures.inc({ ...labels, class: sample.outcome, traffic });
    if (!sample.background) {
      this.#applianceDuration.observe(labels, sample.latencyMs / 1000);
      this.#queueWait.observe(labels, sample.queueWaitMs / 1000);
    }
  }

  #routed(call: RoutedCall): void {
    const operation = call.op;
    this.#routedCalls.inc({ operation, result: call.answeredBy === undefined ? 'failed' : 'answered' });
    const hedges = call.attempts.filter((attempt) => attempt.hedge).length;
    const retries = Math.max(0, call.attempts.length - 1 - hedges);
    if (hedges > 0) this.#hedges.inc({ operation }, hedges);
    if (retries > 0) this.#retries.inc({ operation }, retries);
    const answered = call.attempts.find((attempt) => attempt.applianceId === call.answeredBy && attempt.outcome === 'answered');
    if (answered) {
      this.#zoneAnswered.inc({ zone: answered.zone });
      const now = Date.now();
      this.#recentAnswers.push({ at: now, zone: answered.zone });
      this.#trimAnswers(now);
    }
  }

  #trimAnswers(now: number): void {
    let drop = 0;
    while (drop < this.#recentAnswers.length && (this.#recentAnswers[drop]?.at ?? now) < now - shareWindowMs) drop++;
    if (drop > 0) this.#recentAnswers.splice(0, drop);
  }

  #reconciled(trigger: ReconcileTrigger, report: ReconcileReport): void {
    this.#reconcilerRuns.inc({ trigger });
    this.#reconcilerCopies.inc(report.copied);
    this.#reconcilerLost.inc(report.lost);
    this.#reconcilerFailures.inc(report.failures.length);
  }

  /** Gauges (and counters kept by the fleet itself) read when scraped. */
  #scrapedMetrics(): void {
    const sources = this.#sources;
    const registers = [this.registry];
    const { fleet } = sources;
    const each = (set: (labels: { appliance: string; zone: string }, appliance: Fleet['appliances'][number]) => void): void => {
      for (const appliance of fleet.appliances) set({ appliance: appliance.id, zone: appliance.zone }, appliance);
    };
    new Gauge({
      name: 'hsmb_appliance_in_flight',
      help: 'Calls running on or waiting for an appliance',
      labelNames: ['appliance', 'zone'],
      registers,
      collect() {
        each((labels, appliance) => this.set(labels, appliance.inFlight));
      },
    });
    new Gauge({
      name: 'hsmb_appliance_sessions',
      help: 'PKCS#11 sessions of an appliance: its logged-in worker processes times the sessions each runs calls on',
      labelNames: ['appliance', 'zone'],
      registers,
      collect() {
        each((labels, appliance) => this.set(labels, appliance.sessionCount));
      },
    });
    new Counter({
      name: 'hsmb_appliance_worker_restarts_total',
      help: 'Worker processes restarted after a crash, hang or injected fault',
      labelNames: ['appliance', 'zone'],
      registers,
      collect() {
        this.reset();
        each((labels, appliance) => this.inc(labels, appliance.stats.workerRestartsTotal));
      },
    });
    new Gauge({
      name: 'hsmb_appliance_breaker_state',
      help: "Circuit breaker state of an appliance: 1 for the state it is in, 0 for the others",
      labelNames: ['appliance', 'zone', 'state'],
      registers,
      collect() {
        each((labels, appliance) => {
          for (const state of breakerStates) this.set({ ...labels, state }, appliance.breaker.state === state ? 1 : 0);
        });
      },
    });
    new Gauge({
      name: 'hsmb_appliance_state',
      help: 'Operator-facing state of an appliance (as in GetFleetStatus): 1 for the state it is in, 0 for the others',
      labelNames: ['appliance', 'zone', 'state'],
      registers,
      collect() {
        each((labels, appliance) => {
          const current = fleet.stateOf(appliance);
          for (const state of applianceStates) this.set({ ...labels, state }, current === state ? 1 : 0);
        });
      },
    });
    new Gauge({
      name: 'hsmb_appliance_injected_faults',
      help: 'Injected faults in force on an appliance (failure rehearsals)',
      labelNames: ['appliance', 'zone'],
      registers,
      collect() {
        each((labels, appliance) => this.set(labels, appliance.faults.length));
      },
    });
    new Gauge({
      name: 'hsmb_replication_versions_missing',
      help: 'Key versions the registry expects on an appliance that its last reconciliation did not find (replication backlog)',
      labelNames: ['appliance', 'zone'],
      registers,
      collect() {
        each((labels, appliance) => this.set(labels, sources.reconciler.inventory(appliance.id)?.missing ?? 0));
      },
    });
    new Gauge({
      name: 'hsmb_replication_orphans',
      help: 'Broker key objects found on an appliance that the registry does not know (never deleted automatically)',
      labelNames: ['appliance', 'zone'],
      registers,
      collect() {
        each((labels, appliance) => this.set(labels, sources.reconciler.inventory(appliance.id)?.orphans.length ?? 0));
      },
    });
    new Gauge({
      name: 'hsmb_zone_appliances',
      help: 'Appliances configured in a zone',
      labelNames: ['zone'],
      registers,
      collect() {
        for (const zone of fleet.snapshot().zones) this.set({ zone: zone.name }, zone.applianceCount);
      },
    });
    new Gauge({
      name: 'hsmb_zone_healthy_appliances',
      help: 'Appliances of a zone that are HEALTHY (serving, breaker closed, not drained or fenced)',
      labelNames: ['zone'],
      registers,
      collect() {
        for (const zone of fleet.snapshot().zones) this.set({ zone: zone.name }, zone.healthyCount);
      },
    });
    const recentAnswers = this.#recentAnswers;
    const trim = (now: number): void => this.#trimAnswers(now);
    new Gauge({
      name: 'hsmb_zone_traffic_share_ratio',
      help: "Share of the last minute's answered calls that a zone answered (0 to 1)",
      labelNames: ['zone'],
      registers,
      collect() {
        trim(Date.now());
        for (const zone of fleet.zones) {
          const answered = recentAnswers.filter((answer) => answer.zone === zone).length;
          this.set({ zone }, recentAnswers.length === 0 ? 0 : answered / recentAnswers.length);
        }
      },
    });
    new Counter({
      name: 'hsmb_retry_budget_refusals_total',
      help: 'Retries and hedges refused because the retry budget was spent',
      registers,
      collect() {
        this.reset();
        this.inc(fleet.retryBudgetRefusals);
      },
    });
    this.#keyMetrics();
  }

  #keyMetrics(): void {
    const { fleet, registry, watch } = this.#sources;
    const registers = [this.registry];
    /** One pass over the store's last answer, shared by the gauges of one scrape. */
    let tally: { at: number; byState: Map<KeyState, number>; underReplicated: number; replicaCounts: Map<string, number> } | undefined;
    const count = async (): Promise<typeof tally> => {
      const read = await watch.tally();
      if (!read) return undefined;
      if (tally && tally.at === read.at) return tally;
      const zoneOf = new Map(fleet.appliances.map((appliance) => [appliance.id, appliance.zone]));
      const policy = registry.effectiveDurability;
      const byState = new Map<KeyState, number>(keyStates.map((state) => [state, 0]));
      let underReplicated = 0;
      for (const key of read.keys) {
        byState.set(key.keyState, (byState.get(key.keyState) ?? 0) + 1);
        for (const version of key.versions) {
          const zones = new Set(version.replicas.map((id) => zoneOf.get(id)));
          if (version.replicas.length < policy.minAppliances || zones.size < policy.minZones) underReplicated++;
        }
      }
      tally = { at: read.at, byState, underReplicated, replicaCounts: read.replicaCounts };
      return tally;
    };
    new Gauge({
      name: 'hsmb_keys',
      help: 'Keys in the registry, by state (as the key store last answered)',
      labelNames: ['state'],
      registers,
      async collect() {
        for (const [state, n] of (await count())?.byState ?? []) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'hsmb_key_versions_under_replicated',
      help: 'Key versions held by fewer appliances or zones than the durability policy asks (as the key store last answered)',
      registers,
      async collect() {
        const counted = await count();
        if (counted) this.set(counted.underReplicated);
      },
    });
    new Gauge({
      name: 'hsmb_appliance_key_versions',
      help: 'Key versions the registry records as present on an appliance (as the key store last answered)',
      labelNames: ['appliance', 'zone'],
      registers,
      async collect() {
        const counts = (await count())?.replicaCounts;
        if (!counts) return;
        for (const appliance of fleet.appliances) this.set({ appliance: appliance.id, zone: appliance.zone }, counts.get(appliance.id) ?? 0);
      },
    });
    new Gauge({
      name: 'hsmb_key_store_answer_age_seconds',
      help: 'Seconds since the key store last answered a read of readiness, metrics or the dashboard; the store-derived gauges are this old',
      registers,
      collect() {
        const age = watch.ageMs;
        if (age !== undefined) this.set(age / 1000);
      },
    });
  }
}
