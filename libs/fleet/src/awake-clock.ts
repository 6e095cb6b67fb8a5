/**
 * The most one gap between two readings of an awake clock counts. A longer
 * gap means the event loop stalled (a large request being parsed, a long
 * garbage collection, a starved CPU): meanwhile the broker could neither
 * send what it had queued nor read the answers that arrived, so a stall is
 * not held against whoever it waits for, however many stalls follow one
 * another. A loop that keeps lagging still advances the clock by this much
 * per reading, so a peer that never answers is always found.
 */
export const stallGapMs = 100;

/** How often an awake timer reads its clock. */
const awakeTickMs = 10;

/**
 * Milliseconds the event loop was awake, read at intervals: each interval
 * counts as its length, at most {@link stallGapMs}.
 */
export class AwakeClock {
  #awakeMs = 0;
  #lastAt: number;

  constructor(now: number = Date.now()) {
    this.#lastAt = now;
  }

  /** The awake time at the last reading. */
  get ms(): number {
    return this.#awakeMs;
  }

  /** Starts the next interval from `now` without counting the one before (nothing was being timed). */
  resume(now: number = Date.now()): void {
    this.#lastAt = now;
  }

  /** Counts the interval since the last reading and returns the awake time. */
  read(now: number = Date.now()): number {
    this.#awakeMs += Math.min(Math.max(0, now - this.#lastAt), stallGapMs);
    this.#lastAt = now;
    return this.#awakeMs;
  }
}

/** A pending awake timeout. */
export interface AwakeTimer {
  clear(): void;
}

/**
 * Calls `callback` once the event loop has been awake for `ms` (see
 * {@link AwakeClock}), for time limits on answers from other processes and
 * hosts. Each reading runs after the poll phase (setImmediate), so an answer
 * that arrived during a stall is read, and settles, before the limit is
 * judged; `callback` must check whether it is still needed.
 */
export function setAwakeTimeout(callback: () => void, ms: number): AwakeTimer {
  const clock = new AwakeClock();
  let done = false;
  const check = (): void => {
    if (done || clock.read() < ms) return;
    done = true;
    clearInterval(interval);
    callback();
  };
  const interval = setInterval(() => setImmediate(check), Math.min(awakeTickMs, Math.max(1, ms)));
  return {
    clear: () => {
      done = true;
      clearInterval(interval);
    },
  };
}
