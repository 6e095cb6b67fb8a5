import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { Appliance } from './appliance.js';
import type { CallOptions } from './appliance-config.js';
import { CallRouter } from './call-router.js';
import { faultFromRequest } from './fault-injection.js';
import type { FaultRequest } from './fault-injection.js';
import type { ExecuteOptions, Executed, FleetConfig, OfficerSession } from './fleet-config.js';
import type { FleetControlEvent, FleetControlListener } from './fleet-control-event.js';
import { applianceSnapshot, applianceState } from './fleet-status.js';
import type { ApplianceSnapshot, ApplianceStatusState, FleetSnapshot, ZoneSnapshot } from './fleet-status.js';
import { HealthProbes } from './health-probes.js';
import { withOfficerSession } from './officer-session.js';
import type { RoutedCallListener } from './routed-call.js';
import { knownZone, refuseDrainingLast, refuseFencingLast } from './rotation-guard.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';

/**
 * The appliances behind the broker: their start and health checks, the
 * operator's controls (drain, fence, fault injection) and status, and for
 * every call the choice of which one serves it ({@link CallRouter}).
 */
export class Fleet {
  readonly config: FleetConfig;
  readonly #appliances = new Map<string, Appliance>();
  readonly #fenced = new Set<string>();
  readonly #zoneOrder: string[];
  readonly #health: HealthProbes;
  readonly #router: CallRouter;
  #healthTimer: NodeJS.Timeout | undefined;
  readonly #recoveryListeners: ((applianceId: string) => void)[] = [];
  readonly #replacedListeners: ((applianceId: string) => void)[] = [];
  readonly #controlListeners: FleetControlListener[] = [];

  constructor(config: FleetConfig) {
    const ids = new Set<string>();
    for (const appliance of config.appliances) {
      if (ids.has(appliance.id)) throw new Error(`appliance id ${appliance.id} appears twice`);
      ids.add(appliance.id);
    }
    this.config = config;
    this.#health = new HealthProbes(config.routing.probeTimeoutMs, (applianceId) => {
      for (const listener of this.#replacedListeners) listener(applianceId);
    });
    for (const appliance of config.appliances) {
      const created = new Appliance(
        appliance,
        config.timeouts,
        { breaker: config.routing.breaker, slowStartMs: config.routing.slowStartMs },
        config.workerFactory ? { workerFactory: config.workerFactory } : {},
      );
      created.breaker.onStateChange((state) => {
        if (state === 'closed') for (const listener of this.#recoveryListeners) listener(created.id);
        // The half-open trial goes out at once rather than at the next health tick.
        if (state === 'half-open') queueMicrotask(() => this.#health.probe(created));
      });
      this.#appliances.set(appliance.id, created);
    }
    const zones = [...new Set(config.appliances.map((appliance) => appliance.zone))].sort();
    this.#zoneOrder = config.routing.preferLocalZone
      ? [...new Set([config.localZone, ...config.routing.zonePriority, ...zones])]
      : [];
    this.#router = new CallRouter({
      config,
      appliances: this.#appliances,
      zoneOrder: this.#zoneOrder,
      health: this.#health,
      inRotation: (appliance) => this.inRotation(appliance),
    });
  }

  /** Starts every appliance's workers and the background health checks. */
  async start(): Promise<void> {
    await Promise.all([...this.#appliances.values()].map((appliance) => appliance.start()));
    this.#healthTimer = setInterval(() => this.checkHealth(), this.config.routing.healthIntervalMs);
    this.#healthTimer.unref();
  }

  /** Called when an appliance returns from an outage: a probe succeeded and its breaker closed. */
  onRecovery(listener: (applianceId: string) => void): void {
    this.#recoveryListeners.push(listener);
  }

  /** Called when a probe finds an appliance's token replaced (wiped and initialised again). */
  onTokenReplaced(listener: (applianceId: string) => void): void {
    this.#replacedListeners.push(listener);
  }

  /** Called when an appliance that should hold a key object does not. */
  onKeyMissing(listener: (applianceId: string, label: string) => void): void {
    this.#router.onKeyMissing(listener);
  }

  /**
   * Called when a caller's call (through {@link execute}) has settled, with
   * every attempt and the appliance that answered. Listeners must not throw.
   */
  onCallRouted(listener: RoutedCallListener): void {
    this.#router.onCallRouted(listener);
  }

  /** Performs `op` on the best eligible appliance, failing over after appliance faults when that is safe. */
  execute<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, options: ExecuteOptions = {}): Promise<Executed<WorkerResult<K>>> {
    return this.#router.execute(op, args, options);
  }

  /** Called after a drain, undrain, fence, unfence, fault injection or fault clearing took effect. Listeners must not throw. */
  onControl(listener: FleetControlListener): void {
    this.#controlListeners.push(listener);
  }

  #control(kind: FleetControlEvent['kind'], target: string, fault?: string): void {
    const event: FleetControlEvent = { kind, target, ...(fault === undefined ? {} : { fault }), at: Date.now() };
    for (const listener of this.#controlListeners) listener(event);
  }

  /** Retries and hedges the retry budget refused since start. */
  get retryBudgetRefusals(): number {
    return this.#router.retryBudgetRefusals;
  }

  /** Every appliance, in configuration order. */
  get appliances(): Appliance[] {
    return [...this.#appliances.values()];
  }

  /** Zones, in preference order. */
  get zones(): string[] {
    return [...new Set([...this.#zoneOrder, ...this.appliances.map((appliance) => appliance.zone)])].filter((zone) =>
      this.appliances.some((appliance) => appliance.zone === zone),
    );
  }

  /** The appliance with `id`. */
  appliance(id: string): Appliance {
    const appliance = this.#appliances.get(id);
    if (!appliance) {
      throw new BrokerError(Code.NOT_FOUND, `appliance_id: no appliance named ${quoteInput(id)}`, {
        reason: 'APPLIANCE_NOT_FOUND',
        details: { field: 'appliance_id' },
      });
    }
    return appliance;
  }

  /** Whether security-officer steps (KEK enrollment) can run on the appliance: an SO PIN or a clone endpoint. */
  hasOfficer(applianceId: string): boolean {
    const appliance = this.appliance(applianceId);
    return appliance.clone !== undefined || appliance.config.soPin !== undefined;
  }

  /** Whether the appliance takes new work: running, not drained, zone not fenced. */
  inRotation(appliance: Appliance): boolean {
    return appliance.available && !appliance.drained && !this.#fenced.has(appliance.zone);
  }

  /** Performs `op` on one named appliance, without failover (replication, inventory, repair). */
  executeOn<K extends WorkerOperation>(applianceId: string, op: K, args: WorkerArgs<K>, options: CallOptions = {}): Promise<WorkerResult<K>> {
    // Maintenance traffic (replication, inventory, repair) is not counted as requests.
    return this.appliance(applianceId).call(op, args, { ...options, background: true });
  }

  /**
   * Probes every appliance with a cheap real operation (random bytes from
   * the token). Probes go through the breaker: they are the half-open trial
   * after an outage, so recovered appliances return without a caller's
   * request being the guinea pig.
   */
  checkHealth(): void {
    for (const appliance of this.appliances) this.#health.probe(appliance);
  }

  #serving(): Appliance[] {
    return this.appliances.filter((appliance) => this.inRotation(appliance));
  }

  /** Stops new work for one appliance; calls in flight finish. Refused when it is the last one serving. */
  drain(applianceId: string): Appliance {
    const appliance = this.appliance(applianceId);
    refuseDrainingLast(this.#serving(), appliance);
    appliance.setDrained(true);
    this.#control('drained', appliance.id);
    return appliance;
  }

  /** Returns a drained appliance to rotation (it slow-starts). */
  undrain(applianceId: string): Appliance {
    const appliance = this.appliance(applianceId);
    appliance.setDrained(false);
    this.#control('undrained', appliance.id);
    return appliance;
  }

  /** Takes a whole zone out of rotation. Refused when no other zone would be serving. */
  fence(zone: string): ZoneSnapshot {
    const name = knownZone(this.appliances, zone);
    refuseFencingLast(this.#serving(), name);
    this.#fenced.add(name);
    this.#control('fenced', name);
    return this.#zoneSnapshot(zone);
  }

  /** Returns a fenced zone to rotation. */
  unfence(zone: string): ZoneSnapshot {
    if (this.#fenced.delete(knownZone(this.appliances, zone))) {
      for (const appliance of this.appliances) if (appliance.zone === zone) appliance.slowStart();
      this.#control('unfenced', zone);
    }
    return this.#zoneSnapshot(zone);
  }

  /** Injects a fault (failure rehearsal); refused unless fault injection is enabled. */
  injectFault(applianceId: string, request: FaultRequest): Appliance {
    if (!this.config.routing.faultInjection) {
      throw new BrokerError(Code.FAILED_PRECONDITION, 'fault injection is disabled; start the broker with HSMB_FAULT_INJECTION=1 to rehearse failures', {
        reason: 'FAULT_INJECTION_DISABLED',
      });
    }
    const fault = faultFromRequest(request);
    const appliance = this.appliance(applianceId);
    appliance.injectFault(fault);
    this.#control('fault-injected', appliance.id, request.kind);
    return appliance;
  }

  /** Clears injected faults on one appliance, or all when `applianceId` is empty. */
  clearFaults(applianceId: string): number {
    // Allowed even when injection is off, so runbooks can clear every broker safely.
    const targets = applianceId === '' ? this.appliances : [this.appliance(applianceId)];
    const cleared = targets.reduce((count, appliance) => count + appliance.clearFaults(), 0);
    // The operator removed the cause: restart workers and try the appliances now,
    // instead of waiting out back-offs grown during the rehearsal.
    for (const appliance of targets) {
      appliance.restartNow();
      void this.#health.recoverSoon(appliance);
    }
    this.#control('faults-cleared', applianceId);
    return cleared;
  }

  /**
   * Runs `body` with a security-officer session on one appliance, in a worker
   * of its own: login state is per process, and the crypto workers stay
   * logged in as the user meanwhile.
   */
  withOfficer<T>(applianceId: string, body: (session: OfficerSession) => Promise<T>): Promise<T> {
    return withOfficerSession(this.appliance(applianceId), this.config.timeouts, body);
  }

  /** The operator-facing state of an appliance. */
  stateOf(appliance: Appliance): ApplianceStatusState {
    return applianceState(appliance, this.#fenced.has(appliance.zone));
  }

  /** A snapshot of one appliance. */
  applianceSnapshot(appliance: Appliance): ApplianceSnapshot {
    return applianceSnapshot(appliance, this.stateOf(appliance));
  }

  #zoneSnapshot(zone: string): ZoneSnapshot {
    const members = this.appliances.filter((appliance) => appliance.zone === zone);
    return {
      name: zone,
      applianceCount: members.length,
      healthyCount: members.filter((appliance) => this.stateOf(appliance) === 'HEALTHY').length,
    };
  }

  /** A snapshot for status output. */
  snapshot(): FleetSnapshot {
    return {
      localZone: this.config.localZone,
      zones: this.zones.map((zone) => this.#zoneSnapshot(zone)),
      appliances: this.appliances.map((appliance) => this.applianceSnapshot(appliance)),
      fencedZones: [...this.#fenced].sort(),
    };
  }

  /** Stops the health checks and every appliance. */
  async stop(): Promise<void> {
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    await Promise.all(this.appliances.map((appliance) => appliance.stop()));
  }
}
