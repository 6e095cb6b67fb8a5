import { BrokerError, Code } from '@hsm-broker/errors';
import type { Appliance } from './appliance.js';
import { defaultFleetTracer, endAttemptSpan, startAttemptSpan } from './attempt-span.js';
import type { ExecuteOptions, Executed, FleetConfig } from './fleet-config.js';
import type { HealthProbes } from './health-probes.js';
import { hedgedCall } from './hedged-call.js';
import { panicTrial } from './panic-trial.js';
import { RetryBudget } from './retry-budget.js';
import type { CallAttempt, RoutedCallListener } from './routed-call.js';
import { operationCatalog } from './worker-operations.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import { chooseAppliance } from './zone-router.js';
import type { RouteCandidate } from './zone-router.js';

/** What the router reads from its fleet. */
export interface CallRouterSources {
  config: FleetConfig;
  appliances: ReadonlyMap<string, Appliance>;
  /** Zones in preference order (empty: no preference). */
  zoneOrder: readonly string[];
  health: HealthProbes;
  /** Whether the appliance takes new work (see Fleet.inRotation). */
  inRotation: (appliance: Appliance) => boolean;
}

/**
 * The choice, for every call, of the appliance that serves it: zone-aware,
 * least loaded per session, breaker-guarded. Idempotent operations that hit
 * an appliance fault are retried on another appliance (preferably in
 * another zone) within the caller's deadline and the retry budget, and
 * hedged when configured; key creation is never retried blindly.
 */
export class CallRouter {
  readonly config: FleetConfig;
  readonly #appliances: ReadonlyMap<string, Appliance>;
  readonly #zoneOrder: readonly string[];
  readonly #health: HealthProbes;
  readonly #inRotation: (appliance: Appliance) => boolean;
  readonly #budget: RetryBudget;
  readonly #routedListeners: RoutedCallListener[] = [];
  readonly #missingListeners: ((applianceId: string, label: string) => void)[] = [];
  #budgetRefusals = 0;

  constructor(sources: CallRouterSources) {
    this.config = sources.config;
    this.#appliances = sources.appliances;
    this.#zoneOrder = sources.zoneOrder;
    this.#health = sources.health;
    this.#inRotation = sources.inRotation;
    this.#budget = new RetryBudget(sources.config.routing.retryBudget);
  }

  /** See Fleet.onKeyMissing. */
  onKeyMissing(listener: (applianceId: string, label: string) => void): void {
    this.#missingListeners.push(listener);
  }

  /** See Fleet.onCallRouted. */
  onCallRouted(listener: RoutedCallListener): void {
    this.#routedListeners.push(listener);
  }

  /** Retries and hedges the retry budget refused since start. */
  get retryBudgetRefusals(): number {
    return this.#budgetRefusals;
  }

  /** Takes a retry (or hedge) from the budget, counting refusals. */
  #tryRetry(): boolean {
    if (this.#budget.tryRetry()) return true;
    this.#budgetRefusals++;
    return false;
  }

  #candidates(options: ExecuteOptions): (RouteCandidate & { appliance: Appliance })[] {
    const pool = options.candidates
      ? options.candidates.map((id) => this.#appliances.get(id)).filter((appliance): appliance is Appliance => appliance !== undefined)
      : [...this.#appliances.values()];
    return pool
      .filter((appliance) => !options.mechanism || appliance.mechanisms.length === 0 || appliance.mechanisms.includes(options.mechanism))
      .map((appliance) => ({
        appliance,
        id: appliance.id,
        zone: appliance.zone,
        inFlight: appliance.inFlight,
        capacity: Math.max(1, appliance.sessionCount),
        latencyEwmaMs: appliance.stats.latencyEwmaMs,
        weight: appliance.weight,
        healthy: appliance.breaker.state === 'closed',
        inRotation: this.#inRotation(appliance),
        answersProbes: this.#health.answersProbes(appliance.id),
      }));
  }

  #noAppliance(op: string, options: ExecuteOptions): BrokerError {
    return new BrokerError(Code.UNAVAILABLE, `no appliance is available for ${op}${options.candidates ? ` (holders: ${options.candidates.join(', ')})` : ''}`, {
      reason: 'NO_APPLIANCE_AVAILABLE',
      failureClass: 'appliance',
    });
  }

  async #attempt<K extends WorkerOperation>(
    appliance: Appliance,
    panic: boolean,
    op: K,
    args: WorkerArgs<K>,
    options: ExecuteOptions,
    trace: CallAttempt[],
    hedge = false,
  ): Promise<WorkerResult<K>> {
    options.onAttempt?.(appliance.id);
    const attempt: CallAttempt = { applianceId: appliance.id, zone: appliance.zone, hedge, panic, outcome: 'pending' };
    trace.push(attempt);
    const span = startAttemptSpan(this.config.tracer ?? defaultFleetTracer, op, attempt, trace.length - 1);
    try {
      const result = panic ? await panicTrial(appliance, op, args, options, this.config.routing.probeTimeoutMs) : await appliance.breaker.fire(() => appliance.call(op, args, options));
      attempt.outcome = 'answered';
      this.#health.noteAnswered(appliance.id);
      return result;
    } catch (error: unknown) {
      if (panic) appliance.breaker.record(error);
      if (BrokerError.from(error).failureClass === 'appliance') this.#health.noteFault(appliance.id);
      attempt.outcome = 'failed';
      attempt.reason = BrokerError.from(error).reason;
      throw error;
    } finally {
      endAttemptSpan(span, attempt);
    }
  }

  #routed(op: WorkerOperation, startedAt: number, trace: CallAttempt[], answeredBy: string | undefined): void {
    // A snapshot: a hedge's loser may still settle after the report.
    const attempts = trace.map((attempt) => ({ ...attempt }));
    for (const listener of this.#routedListeners) listener({ op, startedAt, attempts, answeredBy });
  }

  /** Performs `op` on the best eligible appliance, failing over after appliance faults when that is safe. */
  async execute<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, options: ExecuteOptions = {}): Promise<Executed<WorkerResult<K>>> {
    const trace: CallAttempt[] = [];
    const startedAt = Date.now();
    try {
      const executed = await this.#execute(op, args, options, trace);
      this.#routed(op, startedAt, trace, executed.applianceId);
      return executed;
    } catch (error: unknown) {
      this.#routed(op, startedAt, trace, undefined);
      throw error;
    }
  }

  async #execute<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, given: ExecuteOptions, trace: CallAttempt[]): Promise<Executed<WorkerResult<K>>> {
    const definition = operationCatalog[op];
    // The catalog knows the mechanism the arguments need; a caller may still name one itself.
    const mechanism = given.mechanism ?? definition.mechanism?.(args).name;
    const options = mechanism === given.mechanism ? given : { ...given, mechanism };
    const retryable = definition.idempotent;
    const maxAttempts = retryable ? this.config.routing.maxAttempts : 1;
    const tried = new Set<string>();
    const triedZones = new Set<string>();
    let lastError: BrokerError | undefined;
    this.#budget.recordRequest();
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const choice = chooseAppliance(this.#candidates(options), { zoneOrder: this.#zoneOrder, exclude: tried, avoidZones: triedZones });
      if (!choice) break;
      const { appliance } = choice.appliance;
      if (options.deadline !== undefined && options.deadline - Date.now() < Math.min(appliance.stats.latencyEwmaMs, 1000)) {
        // No attempt starts that cannot finish in time.
        lastError ??= new BrokerError(Code.DEADLINE_EXCEEDED, `${op}: not enough time left for another attempt`, {
          reason: 'DEADLINE_EXCEEDED',
          failureClass: 'deadline',
        });
        break;
      }
      if (attempt > 0 && !this.#tryRetry()) break;
      tried.add(appliance.id);
      triedZones.add(appliance.zone);
      try {
        // A hung peer across a network otherwise costs the whole hang timeout before the retry starts.
        const hedge = this.config.routing.hedgeDelayMs > 0 && definition.hedgeable && attempt === 0;
        const result = hedge
          ? await this.#hedged(appliance, choice.panic, op, args, options, tried, triedZones, trace)
          : { result: await this.#attempt(appliance, choice.panic, op, args, options, trace), applianceId: appliance.id };
        return result;
      } catch (error: unknown) {
        lastError = BrokerError.from(error);
        if (lastError.reason === 'KEY_OBJECT_MISSING') {
          const label = String(lastError.details['label'] ?? '');
          for (const listener of this.#missingListeners) listener(appliance.id, label);
        }
        if (lastError.failureClass !== 'appliance') throw lastError;
      }
    }
    throw lastError ?? this.#noAppliance(op, options);
  }

  /**
   * A hedged call: if the first appliance has not answered after the hedge
   * delay, a second one is asked too and the first answer wins (signing is
   * safe to duplicate; a hung appliance then costs the delay, not the timeout).
   */
  #hedged<K extends WorkerOperation>(
    first: Appliance,
    panic: boolean,
    op: K,
    args: WorkerArgs<K>,
    options: ExecuteOptions,
    tried: Set<string>,
    triedZones: Set<string>,
    trace: CallAttempt[],
  ): Promise<Executed<WorkerResult<K>>> {
    const attempt = (appliance: Appliance, choicePanic: boolean, hedge: boolean): Promise<Executed<WorkerResult<K>>> =>
      this.#attempt(appliance, choicePanic, op, args, options, trace, hedge).then((result) => ({ result, applianceId: appliance.id }));
    return hedgedCall(
      () => attempt(first, panic, false),
      () => {
        const second = chooseAppliance(this.#candidates(options), { zoneOrder: this.#zoneOrder, exclude: tried, avoidZones: triedZones });
        if (!second || !this.#tryRetry()) return undefined;
        tried.add(second.appliance.id);
        triedZones.add(second.appliance.zone);
        return () => attempt(second.appliance.appliance, second.panic, true);
      },
      this.config.routing.hedgeDelayMs,
    );
  }
}
