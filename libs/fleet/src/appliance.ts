import { BrokerError, Code } from '@hsm-broker/errors';
import { cloneUserOperations } from '@hsm-broker/pkcs11';
import type { CloneOperation, TokenDescription } from '@hsm-broker/pkcs11';
import { ApplianceBreaker } from './appliance-breaker.js';
import { CloneClient } from './clone-client.js';
import type { ActiveFault } from './fault-injection.js';
import type { ApplianceConfig, ApplianceHealth, ApplianceSeams, ApplianceStats, ApplianceTimeouts, CallOptions, RecoveryPolicy } from './appliance-config.js';
import type { ApplianceCallListener, ApplianceCallOutcome } from './appliance-call-sample.js';
import { operationCatalog } from './worker-operations.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import { processWorkerFactory, WorkerPool } from './worker-pool.js';
import { setAwakeTimeout } from './awake-clock.js';
import type { AwakeTimer } from './awake-clock.js';

const ewmaWeight = 0.2;
/** Calls pipelined to one worker at most; more wait in the appliance's queue. */
const defaultMaxInFlightPerWorker = 32;

/**
 * An appliance and its pool of worker processes. Each worker holds one
 * logged-in session and runs one call at a time, so the pool size is the
 * appliance's concurrency; further calls wait in a bounded queue until a
 * worker frees up or their deadline passes. Crashed workers are restarted
 * with back-off while the others keep serving.
 */
export class Appliance {
  readonly config: ApplianceConfig;
  readonly #timeouts: ApplianceTimeouts;
  readonly #pool: WorkerPool;
  #inFlight = 0;
  #health: ApplianceHealth = 'starting';
  #stopped = false;
  /** Whether start() has run: later workers describe the token themselves if start could not. */
  #startedUp = false;
  #token: TokenDescription | undefined;
  #mechanisms: string[] = [];
  readonly stats: ApplianceStats = {
    requestsTotal: 0,
    failuresTotal: 0,
    latencyEwmaMs: 0,
    lastError: '',
    workerRestartsTotal: 0,
    consecutiveFailures: 0,
  };

  /** The appliance's circuit breaker, fed by appliance faults only. */
  readonly breaker: ApplianceBreaker;
  readonly #slowStartMs: number;
  #recoveredAt = 0;
  #drained = false;
  #faults: ActiveFault[] = [];
  readonly #faultTimers = new Set<NodeJS.Timeout>();
  readonly #callListeners: ApplianceCallListener[] = [];

  /** The node's clone endpoint, when the appliance has one. */
  readonly clone: CloneClient | undefined;

  constructor(config: ApplianceConfig, timeouts: ApplianceTimeouts, recovery: RecoveryPolicy, seams: ApplianceSeams = {}) {
    this.config = config;
    this.#pool = new WorkerPool(
      {
        spec: {
          applianceId: config.id,
          modulePath: config.modulePath,
          selector: config.selector,
          role: 'user',
          pin: config.userPin,
          env: config.env,
          startTimeoutMs: timeouts.startMs,
          sessions: config.sessionsPerWorker ?? 1,
        },
        size: config.workers,
        maxInFlightPerWorker: config.maxInFlightPerWorker ?? defaultMaxInFlightPerWorker,
        factory: seams.workerFactory ?? processWorkerFactory,
        expectedLatencyMs: () => this.stats.latencyEwmaMs,
      },
      {
        started: () => this.#workerStarted(),
        exited: (reason, remaining) => this.#workerExited(reason, remaining),
        startFailed: (error) => {
          this.stats.lastError = error.message;
        },
        restarting: () => {
          this.stats.workerRestartsTotal++;
        },
      },
    );
    this.clone = config.clone ? new CloneClient(config.id, config.clone) : undefined;
    this.#timeouts = timeouts;
    this.#slowStartMs = recovery.slowStartMs;
    this.breaker = new ApplianceBreaker(config.id, recovery.breaker);
    this.breaker.onStateChange((state) => {
      if (state === 'closed') this.#recoveredAt = Date.now();
    });
  }

  /** Called when each call on this appliance has finished, with its timings. Listeners must not throw. */
  onCallFinished(listener: ApplianceCallListener): void {
    this.#callListeners.push(listener);
  }

  #finished(op: WorkerOperation, options: CallOptions, outcome: ApplianceCallOutcome, reason: string | undefined, started: number, queued: number): void {
    if (this.#callListeners.length === 0) return;
    const sample = {
      applianceId: this.id,
      zone: this.zone,
      op,
      outcome,
      ...(reason === undefined ? {} : { reason }),
      background: options.background === true,
      latencyMs: performance.now() - started,
      queueWaitMs: queued,
    };
    for (const listener of this.#callListeners) listener(sample);
  }

  /** Whether an operator drained the appliance. */
  get drained(): boolean {
    return this.#drained;
  }

  /** Takes the appliance out of (or back into) rotation; calls in flight finish. */
  setDrained(drained: boolean): void {
    if (this.#drained && !drained) this.#recoveredAt = Date.now();
    this.#drained = drained;
  }

  /** Starts the slow-start ramp now (the appliance re-enters rotation). */
  slowStart(): void {
    this.#recoveredAt = Date.now();
  }

  /** Share of its normal traffic the appliance should get now (slow start after recovery). */
  get weight(): number {
    if (this.#recoveredAt === 0 || this.#slowStartMs === 0) return 1;
    const elapsed = Date.now() - this.#recoveredAt;
    return elapsed >= this.#slowStartMs ? 1 : 0.1 + (0.9 * elapsed) / this.#slowStartMs;
  }

  /** Injected faults in force. */
  get faults(): readonly ActiveFault[] {
    const now = Date.now();
    return this.#faults.filter((fault) => fault.expiresAt === undefined || fault.expiresAt > now);
  }

  /** Adds a fault for failure rehearsals. It acts inside the worker processes. */
  injectFault(fault: ActiveFault): void {
    this.#faults = [...this.faults, fault];
    if (fault.expiresAt !== undefined) {
      const timer = setTimeout(() => {
        this.#faultTimers.delete(timer);
        this.#faults = [...this.faults];
        this.#pushFaults();
      }, Math.max(0, fault.expiresAt - Date.now()));
      timer.unref();
      this.#faultTimers.add(timer);
    }
    this.#pushFaults();
    if (fault.kind === 'CRASH' && fault.probability === 0) {
      // Every call would crash the worker; do not wait for a call to find out.
      this.#pool.killAll('injected crash');
    }
  }

  /** Restarts missing workers now instead of after the back-off (an operator cleared the cause). */
  restartNow(): void {
    this.#pool.restartNow();
  }

  /** Removes every injected fault. Returns how many there were. */
  clearFaults(): number {
    const count = this.faults.length;
    this.#faults = [];
    for (const timer of this.#faultTimers) clearTimeout(timer);
    this.#faultTimers.clear();
    this.#pushFaults();
    return count;
  }

  #pushFaults(): void {
    this.#pool.setFaults(this.#faults);
  }

  get id(): string {
    return this.config.id;
  }

  get zone(): string {
    return this.config.zone;
  }

  /** Current health. */
  get health(): ApplianceHealth {
    return this.#health;
  }

  /** Calls running or waiting for a worker. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Live worker processes. */
  get workerCount(): number {
    return this.#pool.size;
  }

  /** Calls the appliance's live workers run at once: workers × sessions per worker. */
  get sessionCount(): number {
    return this.#pool.sessions;
  }

  /** Whether calls can be sent now. */
  get available(): boolean {
    return !this.#stopped && this.#pool.size > 0;
  }

  /** Token facts, once a worker has connected. */
  get token(): TokenDescription | undefined {
    return this.#token;
  }

  /**
   * Records the serial a probe saw. Returns true when it differs from the
   * one known: the token was replaced or wiped and initialised again.
   */
  noteTokenSerial(serial: string): boolean {
    if (!this.#token) return false;
    if (this.#token.serial === serial) return false;
    this.#token = { ...this.#token, serial };
    return true;
  }

  /** Mechanism names the token offers. */
  get mechanisms(): readonly string[] {
    return this.#mechanisms;
  }

  /** Process ids of the workers (for failure rehearsals). */
  get workerPids(): number[] {
    return this.#pool.pids;
  }

  /** Starts the worker pool. Resolves once at least one worker serves, or the appliance is known down. */
  async start(): Promise<void> {
    const started = await this.#pool.start();
    this.#startedUp = true;
    if (started === 0) {
      this.#health = 'down';
      // It joins only after a probe succeeds, which also triggers its repair.
      this.breaker.forceOpen();
      return;
    }
    this.#health = started === this.config.workers ? 'healthy' : 'degraded';
    await this.#describe();
  }

  async #describe(): Promise<void> {
    try {
      const description = await this.call('describe', {}, {});
      this.#token = description.token;
      this.#mechanisms = description.mechanisms;
    } catch {
      // Status shows no mechanisms until a later describe succeeds.
    }
  }

  #workerStarted(): void {
    if (this.#health === 'down') this.#recoveredAt = Date.now();
    if (this.#health === 'down' || this.#health === 'starting') this.#health = 'degraded';
    if (this.#pool.full && this.stats.consecutiveFailures === 0) this.#health = 'healthy';
    // A worker restarted after start-up describes the token if nobody could yet.
    if (!this.#token && this.#startedUp) queueMicrotask(() => void this.#describe());
  }

  #workerExited(reason: string, remaining: number): void {
    this.stats.lastError = `worker exited: ${reason}`;
    this.#health = remaining === 0 ? 'down' : 'degraded';
    if (remaining === 0) this.breaker.forceOpen();
    else this.breaker.noteFault();
  }

  #unavailable(what: string): BrokerError {
    return new BrokerError(Code.UNAVAILABLE, `appliance ${this.id} ${what}`, {
      reason: 'APPLIANCE_UNAVAILABLE',
      failureClass: 'appliance',
      details: { appliance: this.id },
    });
  }

  /**
   * Performs one operation on this appliance. Appliance faults are counted
   * here; caller errors pass through without touching the appliance's health.
   */
  async call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, options: CallOptions): Promise<WorkerResult<K>> {
    if (this.#stopped) throw this.#unavailable('is stopped');
    this.#inFlight++;
    if (!options.background) this.stats.requestsTotal++;
    const started = performance.now();
    let queued = 0;
    try {
      const definition = operationCatalog[op];
      const slow = options.slow === true || definition.slow;
      const hangTimeout = slow ? this.#timeouts.slowCallMs : this.#timeouts.callMs;
      let result: WorkerResult<K>;
      if (this.clone && cloneUserOperations.has(op)) {
        const running = this.clone.call(op as CloneOperation, args as never, hangTimeout) as Promise<WorkerResult<K>>;
        result = await this.#withinDeadline(running, options.deadline, op, options.onAbandoned);
      } else {
        const acquired = this.#pool.acquire(options.deadline);
        const worker = 'then' in acquired ? await acquired : acquired;
        queued = performance.now() - started;
        const onAbandoned = options.onAbandoned;
        const running = worker.call(op, args, hangTimeout, {
          deadline: options.deadline,
          onAbandoned: onAbandoned && ((settled) => onAbandoned(this.id, settled)),
        });
        if (slow) this.#pool.trackSlow(worker, running);
        result = await running;
      }
      this.#recordSuccess(performance.now() - started);
      this.#finished(op, options, 'ok', undefined, started, queued);
      return result;
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      if (failure.failureClass === 'appliance') this.#recordFailure(failure, options.background === true);
      this.#finished(op, options, failure.failureClass, failure.reason, started, queued);
      throw failure;
    } finally {
      this.#inFlight--;
    }
  }

  /** The caller's deadline for calls outside the worker pipe (clone endpoint), on the same awake clock as the pipe's. */
  #withinDeadline<T>(running: Promise<T>, deadline: number | undefined, op: string, onAbandoned: CallOptions['onAbandoned']): Promise<T> {
    if (deadline === undefined) return running;
    // The caller stops waiting; the worker finishes the call and is released then.
    let timer: AwakeTimer | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setAwakeTimeout(() => {
        reject(
          new BrokerError(Code.DEADLINE_EXCEEDED, `appliance ${this.id}: ${op} did not finish before the caller's deadline`, {
            reason: 'DEADLINE_EXCEEDED',
            failureClass: 'deadline',
          }),
        );
      }, Math.max(0, deadline - Date.now()));
    });
    return Promise.race([running, expired])
      .catch((error: unknown) => {
        if (onAbandoned && BrokerError.from(error).failureClass === 'deadline') onAbandoned(this.id, running);
        throw error;
      })
      .finally(() => timer?.clear());
  }

  #recordSuccess(latencyMs: number): void {
    // Restart back-off resets only once a worker has really served: a worker
    // that starts and then crashes on its first call keeps backing off.
    this.#pool.resetBackoff();
    this.stats.latencyEwmaMs =
      this.stats.latencyEwmaMs === 0 ? latencyMs : this.stats.latencyEwmaMs * (1 - ewmaWeight) + latencyMs * ewmaWeight;
    this.stats.consecutiveFailures = 0;
    if (this.#health === 'degraded' && this.#pool.full) this.#health = 'healthy';
  }

  #recordFailure(error: BrokerError, background: boolean): void {
    if (!background) this.stats.failuresTotal++;
    this.stats.consecutiveFailures++;
    this.stats.lastError = error.message;
    if (this.#health === 'healthy') this.#health = 'degraded';
  }

  /** Stops every worker and refuses further calls. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.breaker.shutdown();
    for (const timer of this.#faultTimers) clearTimeout(timer);
    await this.#pool.stop();
    this.clone?.close();
  }
}
