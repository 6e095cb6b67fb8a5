import { BrokerError, Code } from '@hsm-broker/errors';
import { ApplianceWorker } from './appliance-worker.js';
import type { WorkerExit, WorkerSpec } from './appliance-worker.js';
import type { ActiveFault } from './fault-injection.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import type { WorkerCallOptions } from './worker-connection.js';

/** A worker process as the pool uses it; {@link ApplianceWorker} is the real one. */
export interface PooledWorker {
  readonly pid: number | undefined;
  readonly exited: boolean;
  /** Calls sent and not yet answered. */
  readonly inFlight: number;
  /** Recent time per call, to tell how long a new call would wait behind those in flight. */
  readonly serviceTimeMs: number;
  /** Calls the worker runs at once (its PKCS#11 sessions). */
  readonly sessions: number;
  call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, timeoutMs: number, options?: WorkerCallOptions): Promise<WorkerResult<K>>;
  onExit(listener: (exit: WorkerExit) => void): void;
  onCallSettled(listener: () => void): void;
  setFaults(faults: ActiveFault[]): void;
  kill(reason: string): void;
  stop(): Promise<void>;
}

/** Starts one worker (logged in) from its spec. Injected so tests can run the pool on fakes. */
export type WorkerFactory = (spec: WorkerSpec) => Promise<PooledWorker>;

/** The real factory: one OS process per worker. */
export const processWorkerFactory: WorkerFactory = (spec) => ApplianceWorker.start(spec);

/** What the pool tells its appliance. */
export interface WorkerPoolEvents {
  /** A worker started and serves. */
  started(): void;
  /** A worker exited unasked; `remaining` still serve. */
  exited(reason: string, remaining: number): void;
  /** A worker could not start. */
  startFailed(error: BrokerError): void;
  /** A missing worker is being restarted (counted whether or not it starts). */
  restarting(): void;
}

/** Settings of one appliance's pool. */
export interface WorkerPoolOptions {
  spec: WorkerSpec;
  /** Worker processes to keep running. */
  size: number;
  /** Calls pipelined to one worker at most; further calls wait in the pool's queue. */
  maxInFlightPerWorker: number;
  factory: WorkerFactory;
  /** The appliance's typical call latency: no queued call starts that cannot finish in time. */
  expectedLatencyMs(): number;
}

interface Waiter {
  resolve(worker: PooledWorker): void;
  reject(error: BrokerError): void;
  timer: NodeJS.Timeout | undefined;
  deadline: number | undefined;
}

/** Queued calls per worker at most, beyond those in flight. */
const maxQueuedPerWorker = 256;

/**
 * How long a call may wait for a slot: until shortly before the caller's
 * deadline, so the caller hears RESOURCE_EXHAUSTED from the broker rather
 * than its own DEADLINE_EXCEEDED, and knows the fleet was saturated.
 */
function queueWait(deadline: number): number {
  const remaining = deadline - Date.now();
  return Math.max(0, remaining - Math.max(25, remaining * 0.1));
}

/**
 * Whether a call sent to `worker` now should finish before `deadline`, behind
 * the calls already in flight there. A call that would not stays in the
 * broker's queue, where it is answered RESOURCE_EXHAUSTED in time, instead of
 * running out its caller's deadline inside the worker.
 */
function fits(worker: PooledWorker, deadline: number | undefined): boolean {
  if (deadline === undefined || worker.inFlight < worker.sessions) return true;
  return Math.ceil((worker.inFlight + 1) / worker.sessions) * worker.serviceTimeMs <= queueWait(deadline);
}

/**
 * One appliance's worker processes: started, restarted with back-off after
 * a crash or hang while the others keep serving, and chosen per call (the
 * least loaded below its pipeline depth; a worker busy with a slow call is
 * passed over while another can serve). Calls beyond every worker's depth
 * wait in a bounded queue until a slot frees or their deadline nears.
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #events: WorkerPoolEvents;
  readonly #workers = new Set<PooledWorker>();
  /** Slow calls in flight per worker (key generation, wrapping). */
  readonly #slow = new Map<PooledWorker, number>();
  readonly #waiters: Waiter[] = [];
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #restartDelayMs = 100;
  #faults: ActiveFault[] = [];
  #stopped = false;

  constructor(options: WorkerPoolOptions, events: WorkerPoolEvents) {
    this.#options = options;
    this.#events = events;
  }

  /** Live workers. */
  get size(): number {
    return this.#workers.size;
  }

  /** Calls the live workers run at once: the sum of their sessions. */
  get sessions(): number {
    let total = 0;
    for (const worker of this.#workers) total += worker.sessions;
    return total;
  }

  /** Whether every configured worker runs. */
  get full(): boolean {
    return this.#workers.size >= this.#options.size;
  }

  /** Process ids of the workers (for failure rehearsals). */
  get pids(): number[] {
    return [...this.#workers].map((worker) => worker.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Starts every worker; resolves with how many started. Missing ones are restarted with back-off. */
  async start(): Promise<number> {
    const results = await Promise.allSettled(Array.from({ length: this.#options.size }, () => this.#startWorker()));
    for (let i = this.#workers.size; i < this.#options.size; i++) this.scheduleRestart();
    return results.filter((result) => result.status === 'fulfilled').length;
  }

  /** A worker served a call: restart back-off starts from the beginning again. */
  resetBackoff(): void {
    this.#restartDelayMs = 100;
  }

  async #startWorker(): Promise<void> {
    let worker: PooledWorker;
    try {
      worker = await this.#options.factory(this.#options.spec);
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      this.#events.startFailed(failure);
      throw failure;
    }
    if (this.#stopped) {
      await worker.stop();
      return;
    }
    this.#workers.add(worker);
    worker.onExit((exit) => this.#onExit(worker, exit.reason));
    worker.onCallSettled(() => this.#release(worker));
    if (this.#faults.length > 0) worker.setFaults(this.#faults);
    this.#events.started();
    this.#release(worker);
  }

  #onExit(worker: PooledWorker, reason: string): void {
    this.#workers.delete(worker);
    this.#slow.delete(worker);
    if (this.#stopped) return;
    if (this.#workers.size === 0) {
      // Nobody can serve the queue; fail it fast so callers go elsewhere.
      for (const waiter of this.#waiters.splice(0)) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.reject(this.#unavailable('has no running worker'));
      }
    }
    this.#events.exited(reason, this.#workers.size);
    this.scheduleRestart();
  }

  /** Starts one missing worker after the current back-off. */
  scheduleRestart(): void {
    if (this.#stopped) return;
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, 5000);
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (this.#stopped || this.full) return;
      this.#events.restarting();
      this.#startWorker().catch(() => {
        if (!this.full) this.scheduleRestart();
      });
    }, delay);
    this.#restartTimers.add(timer);
  }

  /** Restarts missing workers now instead of after the back-off (an operator cleared the cause). */
  restartNow(): void {
    this.#restartDelayMs = 100;
    if (this.#stopped) return;
    const pending = [...this.#restartTimers];
    this.#restartTimers.clear();
    for (const timer of pending) clearTimeout(timer);
    for (let i = 0; i < pending.length; i++) this.scheduleRestart();
  }

  /** Replaces the injected faults on every worker, and on those started later. */
  setFaults(faults: ActiveFault[]): void {
    this.#faults = faults;
    for (const worker of this.#workers) worker.setFaults(faults);
  }

  /** Kills every worker (an injected crash that would hit every call). */
  killAll(reason: string): void {
    for (const worker of this.#workers) worker.kill(reason);
  }

  #unavailable(what: string): BrokerError {
    const id = this.#options.spec.applianceId;
    return new BrokerError(Code.UNAVAILABLE, `appliance ${id} ${what}`, {
      reason: 'APPLIANCE_UNAVAILABLE',
      failureClass: 'appliance',
      details: { appliance: id },
    });
  }

  #saturated(): BrokerError {
    return new BrokerError(Code.RESOURCE_EXHAUSTED, `appliance ${this.#options.spec.applianceId} had no free session in time for the deadline`, {
      reason: 'APPLIANCE_SATURATED',
      failureClass: 'overload',
    });
  }

  /** The least loaded worker with a free slot; one busy with a slow call only when nothing else has room. */
  #pick(deadline: number | undefined): PooledWorker | undefined {
    let best: PooledWorker | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    const depth = this.#options.maxInFlightPerWorker;
    for (const worker of this.#workers) {
      if (worker.exited || worker.inFlight >= depth || !fits(worker, deadline)) continue;
      const load = worker.inFlight / worker.sessions + (this.#slow.has(worker) ? depth : 0);
      if (load < bestLoad) {
        best = worker;
        bestLoad = load;
      }
    }
    return best;
  }

  /**
   * A worker for one call, at once when one has room (no promise then), else
   * after waiting in the queue.
   */
  acquire(deadline: number | undefined): PooledWorker | Promise<PooledWorker> {
    const worker = this.#waiters.length === 0 ? this.#pick(deadline) : undefined;
    if (worker) return worker;
    if (this.#workers.size === 0) return Promise.reject(this.#unavailable('has no running worker'));
    if (this.#waiters.length >= maxQueuedPerWorker * Math.max(1, this.#workers.size)) {
      return Promise.reject(
        new BrokerError(Code.RESOURCE_EXHAUSTED, `appliance ${this.#options.spec.applianceId} queue is full`, { reason: 'APPLIANCE_QUEUE_FULL' }),
      );
    }
    return new Promise<PooledWorker>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined, deadline };
      if (deadline !== undefined) {
        waiter.timer = setTimeout(() => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          reject(this.#saturated());
        }, queueWait(deadline));
      }
      this.#waiters.push(waiter);
    });
  }

  /** Marks a slow call running on `worker` until `done` settles (other calls avoid the worker meanwhile). */
  trackSlow(worker: PooledWorker, done: Promise<unknown>): void {
    this.#slow.set(worker, (this.#slow.get(worker) ?? 0) + 1);
    const finished = (): void => {
      const left = (this.#slow.get(worker) ?? 1) - 1;
      if (left <= 0) this.#slow.delete(worker);
      else this.#slow.set(worker, left);
    };
    done.then(finished, finished);
  }

  #release(worker: PooledWorker): void {
    if (this.#waiters.length === 0 || worker.exited || !this.#workers.has(worker)) return;
    while (this.#waiters.length > 0 && worker.inFlight < this.#options.maxInFlightPerWorker) {
      const waiter = this.#waiters[0];
      // No call starts that cannot finish before its deadline.
      const late = waiter.deadline !== undefined && waiter.deadline - Date.now() < this.#options.expectedLatencyMs();
      // Not yet room in time: the next answer frees some; the waiter's own timer bounds the wait.
      if (!late && !fits(worker, waiter.deadline)) return;
      this.#waiters.shift();
      if (waiter.timer) clearTimeout(waiter.timer);
      if (late) {
        waiter.reject(this.#saturated());
        continue;
      }
      waiter.resolve(worker);
      // The waiter sends its call on a later microtask; one per answer keeps the depth honest.
      return;
    }
  }

  /** Stops every worker and fails the queue. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#restartTimers) clearTimeout(timer);
    this.#restartTimers.clear();
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(this.#unavailable('is stopping'));
    }
    await Promise.all([...this.#workers].map((worker) => worker.stop()));
    this.#workers.clear();
  }
}
