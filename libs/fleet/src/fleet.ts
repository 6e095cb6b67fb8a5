import { BrokerError, Code } from '@hsm-broker/errors';
import { Appliance } from './appliance.js';
import type { ApplianceConfig, ApplianceHealth, ApplianceTimeouts, CallOptions } from './appliance.js';
import { ApplianceWorker } from './appliance-worker.js';
import { idempotentOperations } from './worker-operations.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';

/** The fleet as configured. */
export interface FleetConfig {
  /** The zone the broker runs in. */
  localZone: string;
  appliances: ApplianceConfig[];
  timeouts: ApplianceTimeouts;
}

/** Options for {@link Fleet.execute}. */
export interface ExecuteOptions extends CallOptions {
  /** Only these appliances may serve the call (the holders of a key version). */
  candidates?: readonly string[];
}

/** A result and where it was computed. */
export interface Executed<T> {
  result: T;
  applianceId: string;
}

/** A snapshot of one appliance for status output. */
export interface ApplianceSnapshot {
  id: string;
  zone: string;
  health: ApplianceHealth;
  inFlight: number;
  requestsTotal: number;
  failuresTotal: number;
  latencyEwmaMs: number;
  keysPresent: number;
  mechanisms: readonly string[];
  lastError: string;
  workers: number;
  workerRestartsTotal: number;
  tokenLabel: string;
}

/** A snapshot of the fleet for status output. */
export interface FleetSnapshot {
  localZone: string;
  zones: { name: string; applianceCount: number; healthyCount: number }[];
  appliances: ApplianceSnapshot[];
}

/** A security-officer session on one appliance, for KEK enrollment. */
export interface OfficerSession {
  call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>): Promise<WorkerResult<K>>;
}

/**
 * The appliances behind the broker and the choice of which one serves a
 * call: among the eligible appliances with a running worker, the one with the
 * fewest calls in flight (ties broken in turn). Idempotent operations that
 * hit an appliance fault are tried again on another appliance while the
 * caller's deadline allows.
 */
export class Fleet {
  readonly config: FleetConfig;
  readonly #appliances = new Map<string, Appliance>();
  #turn = 0;

  constructor(config: FleetConfig) {
    const ids = new Set<string>();
    for (const appliance of config.appliances) {
      if (ids.has(appliance.id)) throw new Error(`appliance id ${appliance.id} appears twice`);
      ids.add(appliance.id);
    }
    this.config = config;
    for (const appliance of config.appliances) {
      this.#appliances.set(appliance.id, new Appliance(appliance, config.timeouts));
    }
  }

  /** Starts every appliance's workers. Appliances that cannot start are marked down and retried. */
  async start(): Promise<void> {
    await Promise.all([...this.#appliances.values()].map((appliance) => appliance.start()));
  }

  /** Every appliance, in configuration order. */
  get appliances(): Appliance[] {
    return [...this.#appliances.values()];
  }

  /** The appliance with `id`. */
  appliance(id: string): Appliance {
    const appliance = this.#appliances.get(id);
    if (!appliance) {
      throw new BrokerError(Code.NOT_FOUND, `appliance_id: no appliance named ${id}`, {
        reason: 'APPLIANCE_NOT_FOUND',
        details: { field: 'appliance_id' },
      });
    }
    return appliance;
  }

  #order(candidates: readonly string[] | undefined): Appliance[] {
    const pool = (candidates ? candidates.map((id) => this.#appliances.get(id)) : this.appliances).filter(
      (appliance): appliance is Appliance => appliance !== undefined && appliance.available,
    );
    const turn = this.#turn++;
    return pool
      .map((appliance, index) => ({ appliance, rank: (index + turn) % Math.max(1, pool.length) }))
      .sort((a, b) => a.appliance.inFlight - b.appliance.inFlight || a.rank - b.rank)
      .map((entry) => entry.appliance);
  }

  /** Performs `op` on the best eligible appliance, trying others after appliance faults when that is safe. */
  async execute<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, options: ExecuteOptions = {}): Promise<Executed<WorkerResult<K>>> {
    const ordered = this.#order(options.candidates);
    if (ordered.length === 0) {
      throw new BrokerError(Code.UNAVAILABLE, `no appliance is available for ${op}`, {
        reason: 'NO_APPLIANCE_AVAILABLE',
        failureClass: 'appliance',
        details: { candidates: (options.candidates ?? []).join(',') },
      });
    }
    const retryable = idempotentOperations.has(op);
    let lastError: BrokerError | undefined;
    for (const appliance of ordered) {
      if (options.deadline !== undefined && Date.now() >= options.deadline) break;
      try {
        const result = await appliance.call(op, args, options);
        return { result, applianceId: appliance.id };
      } catch (error: unknown) {
        lastError = BrokerError.from(error);
        if (!retryable || lastError.failureClass !== 'appliance') throw lastError;
      }
    }
    if (lastError) throw lastError;
    throw new BrokerError(Code.DEADLINE_EXCEEDED, `${op}: the deadline passed before an appliance could be tried`, {
      reason: 'DEADLINE_EXCEEDED',
      failureClass: 'deadline',
    });
  }

  /** Performs `op` on one named appliance, without failover (replication, inventory, repair). */
  executeOn<K extends WorkerOperation>(applianceId: string, op: K, args: WorkerArgs<K>, options: CallOptions = {}): Promise<WorkerResult<K>> {
    return this.appliance(applianceId).call(op, args, options);
  }

  /**
   * Runs `body` with a security-officer session on one appliance, in a worker
   * of its own: login state is per process, and the crypto workers stay
   * logged in as the user meanwhile.
   */
  async withOfficer<T>(applianceId: string, body: (session: OfficerSession) => Promise<T>): Promise<T> {
    const appliance = this.appliance(applianceId);
    if (appliance.config.soPin === undefined) {
      throw new BrokerError(Code.FAILED_PRECONDITION, `appliance ${applianceId} has no security-officer PIN configured`, {
        reason: 'SO_PIN_MISSING',
      });
    }
    const worker = await ApplianceWorker.start({
      applianceId,
      modulePath: appliance.config.modulePath,
      selector: appliance.config.selector,
      role: 'so',
      pin: appliance.config.soPin,
      env: appliance.config.env,
      startTimeoutMs: this.config.timeouts.startMs,
    });
    try {
      return await body({ call: (op, args) => worker.call(op, args, this.config.timeouts.slowCallMs) });
    } finally {
      await worker.stop();
    }
  }

  /** A snapshot for status output. */
  snapshot(): FleetSnapshot {
    const zones = new Map<string, { name: string; applianceCount: number; healthyCount: number }>();
    const appliances = this.appliances.map((appliance): ApplianceSnapshot => {
      const zone = zones.get(appliance.zone) ?? { name: appliance.zone, applianceCount: 0, healthyCount: 0 };
      zone.applianceCount++;
      if (appliance.health === 'healthy') zone.healthyCount++;
      zones.set(appliance.zone, zone);
      return {
        id: appliance.id,
        zone: appliance.zone,
        health: appliance.health,
        inFlight: appliance.inFlight,
        requestsTotal: appliance.stats.requestsTotal,
        failuresTotal: appliance.stats.failuresTotal,
        latencyEwmaMs: appliance.stats.latencyEwmaMs,
        keysPresent: appliance.keysPresent,
        mechanisms: appliance.mechanisms,
        lastError: appliance.stats.lastError,
        workers: appliance.workerCount,
        workerRestartsTotal: appliance.stats.workerRestartsTotal,
        tokenLabel: appliance.token?.label ?? '',
      };
    });
    return { localZone: this.config.localZone, zones: [...zones.values()], appliances };
  }

  /** Stops every appliance. */
  async stop(): Promise<void> {
    await Promise.all(this.appliances.map((appliance) => appliance.stop()));
  }
}
