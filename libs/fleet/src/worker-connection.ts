import { BrokerError, Code } from '@hsm-broker/errors';
import type { SerializedBrokerError } from '@hsm-broker/errors';
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
  op: WorkerOperation;
  timeoutMs: number;
  /** When it was sent (ms since epoch). */
  sentAt: number;
  /** The awake clock when the call was sent. */
  sentAwakeMs: number;
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
 * Time limits here are measured on the connection's awake clock: the time
 * between two checks counts at most this much. A longer gap means the event
 * loop stalled (a large request being parsed, a long garbage collection, a
 * starved CPU), and during a stall the broker could neither send the frames
 * it had queued nor read the answers that arrived, so the stall is not held
 * against the worker, however many stalls follow one another. A loop that
 * keeps lagging still advances the clock by this much per check, so a hung
 * worker is always found.
 */
const stallGapMs = 100;

/**
 * The broker's end of one worker pipe: calls go out as frames (coalesced,
 * one write per turn), many in flight; answers are matched by id in any
 * order. The hang limit of the call the worker is running and callers'
 * deadlines are enforced by one periodic sweep instead of a timer per call,
 * on an awake clock that does not count the broker's own stalls. A hung call
 * is reported through `onHang`, whose owner kills the process;
 * {@link failAll} then fails the rest.
 */
export class WorkerConnection {
  readonly #applianceId: string;
  readonly #pending = new Map<number, PendingCall>();
  readonly #out: CoalescingFrameWriter;
  readonly #reader: FrameReader;
  readonly #onHang: (op: WorkerOperation) => void;
  readonly #settledListeners: (() => void)[] = [];
  #nextId = 1;
  /** When the last answer arrived: the worker started the oldest call in flight no earlier. */
  #lastAnswerAt = 0;
  /** The awake clock when the last answer arrived. */
  #lastAnswerAwakeMs = 0;
  /** Milliseconds the event loop was awake while calls were in flight (see stallGapMs). */
  #awakeMs = 0;
  /** How long the worker takes per call, recent calls weighing most. */
  #serviceEwmaMs = 0;
  #sweep: NodeJS.Timeout | undefined;
  #closedBy: ((op: string) => BrokerError) | undefined;
  /** A hang was reported: the process is being killed, and the calls behind it fail with it, not as hangs of their own. */
  #condemned = false;
  /** When the sweep last ran (or started), to tell a stalled event loop from a hung worker. */
  #lastCheckAt = 0;

  constructor(applianceId: string, sink: FrameSink, onHang: (op: WorkerOperation) => void) {
    this.#applianceId = applianceId;
    this.#out = new CoalescingFrameWriter(sink);
    this.#reader = new FrameReader((id, code, payload) => this.#answer(id, code, payload));
    this.#onHang = onHang;
  }

  /** Calls sent and not yet answered (abandoned ones included: the worker still runs them). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * How long the worker takes per call (time from when it could start one to
   * its answer): with calls queued in the worker, the wait of a new call is
   * about this times the calls ahead of it.
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
      this.#pending.set(id, {
        op,
        timeoutMs,
        sentAt: Date.now(),
        sentAwakeMs: this.#awakeMs,
        deadline: options.deadline,
        resolve,
        reject,
        onAbandoned: options.onAbandoned,
        abandoned: undefined,
      });
      if (!this.#sweep) {
        this.#lastCheckAt = Date.now();
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
    for (const call of pending) this.#fail(call, gone(call.op));
  }

  #answer(id: number, code: number, payload: ValueReader): void {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    const now = Date.now();
    const serviceMs = now - Math.max(call.sentAt, this.#lastAnswerAt);
    this.#serviceEwmaMs = this.#serviceEwmaMs === 0 ? serviceMs : this.#serviceEwmaMs * 0.8 + serviceMs * 0.2;
    this.#lastAnswerAt = now;
    this.#lastAnswerAwakeMs = this.#awakeMs;
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

  // Runs after the poll phase (see stall-tolerant-timer.ts): answers that
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
    this.#awakeMs += Math.min(Math.max(0, now - this.#lastCheckAt), stallGapMs);
    this.#lastCheckAt = now;
    // The worker runs calls in the order sent, so only the oldest can hang;
    // its clock starts when it was sent or when the call before it was answered.
    const [headId, head] = this.#pending.entries().next().value as [number, PendingCall];
    if (!this.#condemned && this.#awakeMs - Math.max(head.sentAwakeMs, this.#lastAnswerAwakeMs) >= head.timeoutMs) {
      this.#condemned = true;
      this.#pending.delete(headId);
      this.#fail(head, this.#hung(head));
      this.#settled();
      this.#onHang(head.op);
      // The owner kills the process; the calls behind this one fail with it.
      return;
    }
    for (const call of this.#pending.values()) {
      if (call.abandoned || call.deadline === undefined) continue;
      // Past the deadline, and awake for as long as the caller allowed: an
      // answer that came during a stall has been read by now.
      if (now >= call.deadline && this.#awakeMs - call.sentAwakeMs >= call.deadline - call.sentAt) this.#abandon(call);
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
