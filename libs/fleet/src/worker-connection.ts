import { BrokerError, Code } from '@hsm-broker/errors';
import type { SerializedBrokerError } from '@hsm-broker/errors';
import { AwakeClock } from './awake-clock.js';
import { operationCatalog } from './worker-operations.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import { CoalescingFrameWriter, FrameReader, responseOk } from './worker-wire.js';
import type { FrameSink, ValueReader } from './worker-wire.js';

/** Per-call options beside the hang limit. */
export interface WorkerCallOptions {
  /** The caller's deadline (ms since epoch): the caller hears DEADLINE_EXCEEDED then, while the worker finishes. */
  deadline?: number | undefined;
  /** Told when the caller's deadline passed first; `settled` ends when the worker answers. */
  onAbandoned?: ((settled: Promise<unknown>) => void) | undefined;
}

interface PendingCall {
  id: number;
  op: WorkerOperation;
  /** Runs beside others on a session of its own (see serveWorker). */
  concurrent: boolean;
  timeoutMs: number;
  /** When it was sent (ms since epoch). */
  sentAt: number;
  /** The awake clock when the call was sent. */
  sentAwakeMs: number;
  /** When the worker started it, as far as this end can tell (ms since epoch; 0 while queued there). */
  startedAt: number;
  /** The awake clock then. */
  startedAwakeMs: number;
  deadline: number | undefined;
  resolve: (value: unknown) => void;
  reject: (error: BrokerError) => void;
  onAbandoned: ((settled: Promise<unknown>) => void) | undefined;
  /** Set once the caller stopped waiting: the worker's answer settles this instead. */
  abandoned: { resolve: (value: unknown) => void; reject: (error: unknown) => void } | undefined;
}

/** How often in-flight calls are checked against their limits: one timer per worker, not one per call. */
const sweepIntervalMs = 10;

/**
 * The broker's end of one worker pipe: calls go out as frames (coalesced,
 * one write per turn), many in flight; answers are matched by id in any
 * order. The worker starts calls in the order sent, each concurrent one on
 * a free session and any other alone (see serveWorker); this end replays
 * that rule on the answers it reads, so it knows which calls the worker has
 * started, no earlier than the worker did. Each started call's hang limit
 * runs from then, so a call stuck on one session is found while the other
 * sessions keep answering. Hang limits and callers' deadlines are enforced
 * by one periodic sweep instead of a timer per call, on an awake clock that
 * does not count the broker's own stalls. A hung call is reported through
 * `onHang`, whose owner kills the process; {@link failAll} then fails the
 * rest.
 */
export class WorkerConnection {
  readonly #applianceId: string;
  readonly #pending = new Map<number, PendingCall>();
  readonly #out: CoalescingFrameWriter;
  readonly #reader: FrameReader;
  readonly #onHang: (op: WorkerOperation) => void;
  readonly #settledListeners: (() => void)[] = [];
  #nextId = 1;
  /** Sessions the worker runs concurrent calls on. */
  readonly #sessions: number;
  /** Calls sent that the worker has not started yet, in the order sent (from `#queueHead` on). */
  #queued: PendingCall[] = [];
  #queueHead = 0;
  /** Calls the worker has started and not answered. */
  readonly #running = new Set<PendingCall>();
  /** Time the event loop was awake while calls were in flight (stalls of the broker's own loop count little). */
  readonly #clock = new AwakeClock();
  /** How long the worker takes per call, recent calls weighing most. */
  #serviceEwmaMs = 0;
  #sweep: NodeJS.Timeout | undefined;
  #closedBy: ((op: string) => BrokerError) | undefined;
  /** A hang was reported: the process is being killed, and the calls behind it fail with it, not as hangs of their own. */
  #condemned = false;

  constructor(applianceId: string, sink: FrameSink, onHang: (op: WorkerOperation) => void, sessions = 1) {
    this.#applianceId = applianceId;
    this.#sessions = Math.max(1, sessions);
    this.#out = new CoalescingFrameWriter(sink);
    this.#reader = new FrameReader((id, code, payload) => this.#answer(id, code, payload));
    this.#onHang = onHang;
  }

  /** Calls sent and not yet answered (abandoned ones included: the worker still runs them). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sessions the worker runs concurrent calls on. */
  get sessions(): number {
    return this.#sessions;
  }

  /**
   * How long the worker takes per call (time from when it started one to its
   * answer): with calls queued in the worker, the wait of a new call is about
   * this times the calls ahead of it per session.
   */
  get serviceTimeMs(): number {
    return this.#serviceEwmaMs;
  }

  /** Called after each answered or failed call (the pool frees a slot). Listeners must not throw. */
  onSettled(listener: () => void): void {
    this.#settledListeners.push(listener);
  }

  /** Sends one call. Rejects with an appliance fault on a hang or when the worker is gone. */
  call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, timeoutMs: number, options: WorkerCallOptions = {}): Promise<WorkerResult<K>> {
    if (this.#closedBy) return Promise.reject(this.#closedBy(op));
    const definition = operationCatalog[op];
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const frames = this.#out.frames;
    frames.beginFrame(id, definition.code);
    try {
      for (const field of definition.fields) frames.value((args as Record<string, unknown>)[field]);
      frames.endFrame();
    } catch (error: unknown) {
      frames.abandonFrame();
      return Promise.reject(new BrokerError(Code.INTERNAL, `${op}: arguments cannot be sent to the worker`, { cause: error, reason: 'WORKER_ENCODING' }));
    }
    this.#out.schedule();
    return new Promise<unknown>((resolve, reject) => {
      const call: PendingCall = {
        id,
        op,
        concurrent: this.#sessions > 1 && definition.concurrently !== undefined,
        timeoutMs,
        sentAt: Date.now(),
        sentAwakeMs: this.#clock.ms,
        startedAt: 0,
        startedAwakeMs: 0,
        deadline: options.deadline,
        resolve,
        reject,
        onAbandoned: options.onAbandoned,
        abandoned: undefined,
      };
      this.#pending.set(id, call);
      this.#queued.push(call);
      this.#admit();
      if (!this.#sweep) {
        this.#clock.resume();
        this.#sweep = setInterval(this.#tick, sweepIntervalMs);
      }
    }) as Promise<WorkerResult<K>>;
  }

  /** Feeds bytes read from the worker pipe. Throws RangeError on a corrupt stream. */
  receive(chunk: Buffer): void {
    this.#reader.push(chunk);
  }

  /** Fails every call in flight and refuses new ones (the process is gone). */
  failAll(gone: (op: string) => BrokerError): void {
    this.#closedBy = gone;
    this.#stopSweep();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#running.clear();
    this.#queued = [];
    this.#queueHead = 0;
    for (const call of pending) this.#fail(call, gone(call.op));
  }

  /**
   * Marks the calls the worker has started by now: from the oldest queued
   * on, a concurrent call while a session is free and nothing runs alone,
   * any other call once nothing runs.
   */
  #admit(): void {
    const queued = this.#queued;
    while (this.#queueHead < queued.length) {
      const call = queued[this.#queueHead];
      // Answered before it was counted as started (a call the worker refused on arrival).
      if (call.startedAt === -1) {
        this.#queueHead++;
        continue;
      }
      const running = this.#running.size;
      const alone = running === 1 && !this.#running.values().next().value?.concurrent;
      if (call.concurrent ? running >= this.#sessions || alone : running > 0) break;
      this.#queueHead++;
      call.startedAt = Date.now();
      call.startedAwakeMs = this.#clock.ms;
      this.#running.add(call);
    }
    if (this.#queueHead > 256 && this.#queueHead * 2 > queued.length) {
      this.#queued = queued.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  /** Takes `call` out of the worker's order once it is answered or failed. */
  #retire(call: PendingCall): void {
    if (!this.#running.delete(call)) call.startedAt = -1;
    this.#admit();
  }

  #answer(id: number, code: number, payload: ValueReader): void {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    if (call.startedAt > 0) {
      const serviceMs = Date.now() - call.startedAt;
      this.#serviceEwmaMs = this.#serviceEwmaMs === 0 ? serviceMs : this.#serviceEwmaMs * 0.8 + serviceMs * 0.2;
    }
    this.#retire(call);
    const value = payload.value();
    if (code === responseOk) {
      if (call.abandoned) call.abandoned.resolve(value);
      else call.resolve(value);
    } else {
      this.#fail(call, BrokerError.fromJSON(value as SerializedBrokerError));
    }
    this.#settled();
  }

  #fail(call: PendingCall, error: BrokerError): void {
    if (call.abandoned) call.abandoned.reject(error);
    else call.reject(error);
  }

  #settled(): void {
    for (const listener of this.#settledListeners) listener();
  }

  // Runs after the poll phase (see awake-clock.ts): answers that
  // arrived during a stall of the event loop are read before any limit fires.
  readonly #tick = (): void => {
    setImmediate(this.#check);
  };

  readonly #check = (): void => {
    if (this.#pending.size === 0) {
      this.#stopSweep();
      return;
    }
    const now = Date.now();
    const awakeMs = this.#clock.read(now);
    // Only a started call can hang; its clock starts when the worker started it.
    if (!this.#condemned) {
      for (const call of this.#running) {
        if (awakeMs - call.startedAwakeMs < call.timeoutMs) continue;
        this.#condemned = true;
        this.#running.delete(call);
        this.#pending.delete(call.id);
        this.#fail(call, this.#hung(call));
        this.#settled();
        this.#onHang(call.op);
        // The owner kills the process; the calls beside and behind this one fail with it.
        return;
      }
    }
    for (const call of this.#pending.values()) {
      if (call.abandoned || call.deadline === undefined) continue;
      // Past the deadline, and awake for as long as the caller allowed: an
      // answer that came during a stall has been read by now.
      if (now >= call.deadline && awakeMs - call.sentAwakeMs >= call.deadline - call.sentAt) this.#abandon(call);
    }
  };

  #abandon(call: PendingCall): void {
    const reject = call.reject;
    if (call.onAbandoned) {
      const settled = new Promise<unknown>((resolve, rejectSettled) => {
        call.abandoned = { resolve, reject: rejectSettled };
      });
      // Nobody has to listen to the outcome of abandoned work.
      settled.catch(() => undefined);
      call.onAbandoned(settled);
    } else {
      call.abandoned = { resolve: () => undefined, reject: () => undefined };
    }
    reject(
      new BrokerError(Code.DEADLINE_EXCEEDED, `appliance ${this.#applianceId}: ${call.op} did not finish before the caller's deadline`, {
        reason: 'DEADLINE_EXCEEDED',
        failureClass: 'deadline',
      }),
    );
  }

  #hung(call: PendingCall): BrokerError {
    return new BrokerError(Code.UNAVAILABLE, `appliance ${this.#applianceId}: ${call.op} did not complete within ${String(call.timeoutMs)} ms; worker replaced`, {
      reason: 'APPLIANCE_TIMEOUT',
      failureClass: 'appliance',
      details: { appliance: this.#applianceId, op: call.op },
    });
  }

  #stopSweep(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}
