import type { KeyRecord, KeyStoreReads } from '@hsm-broker/keys';

/** Whether the metadata store answered recently, as readiness reports it. */
export interface StoreCheck {
  ok: boolean;
  /** Milliseconds since the store last answered a watcher's read; undefined before its first answer. */
  ageMs: number | undefined;
  /** Why it is not ok: the store's own (public) error, or how long it has been silent. */
  error?: string;
}

/** Keys and replica counts as the store last gave them. */
export interface StoreTally {
  /** When the store answered (epoch ms). */
  at: number;
  keys: KeyRecord[];
  replicaCounts: Map<string, number>;
}

/** Settings of a {@link StoreWatch}. */
export interface StoreWatchOptions {
  /** A value younger than this is served without asking the store again (default 1000 ms). */
  freshMs?: number;
  /** How long a caller waits for a fresh answer before it gets the last one (default 1000 ms). */
  waitMs?: number;
  clock?: () => number;
}

/** One read at a time: callers that arrive while it runs share it. */
class SharedRead<T> {
  #running: Promise<void> | undefined;
  #last: { at: number; value: T } | undefined;
  #error: string | undefined;
  readonly #read: () => Promise<T>;
  readonly #clock: () => number;
  readonly #answered: (at: number) => void;

  constructor(read: () => Promise<T>, clock: () => number, answered: (at: number) => void) {
    this.#read = read;
    this.#clock = clock;
    this.#answered = answered;
  }

  get last(): { at: number; value: T } | undefined {
    return this.#last;
  }

  /** The error of the last finished read; undefined when it answered. */
  get error(): string | undefined {
    return this.#error;
  }

  /** Starts a read unless one runs or the last answer is younger than `freshMs`; resolves when it settles. */
  refresh(freshMs: number): Promise<void> {
    if (this.#running) return this.#running;
    if (this.#last && this.#error === undefined && this.#clock() - this.#last.at < freshMs) return Promise.resolve();
    this.#running = this.#read().then(
      (value) => {
        const at = this.#clock();
        this.#last = { at, value };
        this.#error = undefined;
        this.#answered(at);
      },
      (error: unknown) => {
        this.#error = error instanceof Error ? error.message : String(error);
      },
    );
    void this.#running.finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}

/**
 * What readiness, metrics and the dashboard know of the metadata store,
 * read through the store's asynchronous reads so a slow or stalled shared
 * database never holds the event loop (the PostgreSQL store's ordinary
 * calls wait on their thread). A caller asks for a fresh value and waits a
 * bounded time for it; when the store is slower than that it gets the last
 * value, with its age, and readiness says the store has not answered.
 */
export class StoreWatch {
  readonly #freshMs: number;
  readonly #waitMs: number;
  readonly #clock: () => number;
  readonly #ping: SharedRead<string | undefined>;
  readonly #tally: SharedRead<{ keys: KeyRecord[]; replicaCounts: Map<string, number> }>;
  #answeredAt: number | undefined;

  constructor(reads: KeyStoreReads, options: StoreWatchOptions = {}) {
    this.#freshMs = options.freshMs ?? 1000;
    this.#waitMs = options.waitMs ?? 1000;
    this.#clock = options.clock ?? Date.now;
    const answered = (at: number): void => {
      this.#answeredAt = Math.max(at, this.#answeredAt ?? at);
    };
    this.#ping = new SharedRead(() => reads.getMeta('readiness-probe'), this.#clock, answered);
    this.#tally = new SharedRead(async () => {
      const [keys, replicaCounts] = await Promise.all([reads.allKeys(), reads.replicaCounts()]);
      return { keys, replicaCounts };
    }, this.#clock, answered);
  }

  /** Asks the store whether it answers, waiting at most `waitMs`. */
  async check(): Promise<StoreCheck> {
    await this.#bounded(this.#ping.refresh(this.#freshMs));
    return this.current();
  }

  /** What the last answers say, without waiting; starts a fresh read when the last is old. */
  current(): StoreCheck {
    void this.#ping.refresh(this.#freshMs);
    const now = this.#clock();
    const ageMs = this.#answeredAt === undefined ? undefined : now - this.#answeredAt;
    const error = this.#ping.error;
    if (error !== undefined) return { ok: false, ageMs, error };
    const last = this.#ping.last;
    if (!last || now - last.at > this.#freshMs + this.#waitMs) {
      const silent = ageMs === undefined ? 'has not answered yet' : `has not answered for ${String(Math.round(ageMs))} ms`;
      return { ok: false, ageMs, error: `key store ${silent}` };
    }
    return { ok: true, ageMs };
  }

  /** Keys and replica counts, fresh when the store answers within `waitMs`, else the last ones (undefined before the first). */
  async tally(): Promise<StoreTally | undefined> {
    await this.#bounded(this.#tally.refresh(this.#freshMs));
    return this.lastTally();
  }

  /** The last keys and replica counts, without waiting; starts a fresh read when they are old. */
  lastTally(): StoreTally | undefined {
    void this.#tally.refresh(this.#freshMs);
    const last = this.#tally.last;
    return last ? { at: last.at, ...last.value } : undefined;
  }

  /** Milliseconds since the store last answered any of these reads; undefined before its first answer. */
  get ageMs(): number | undefined {
    return this.#answeredAt === undefined ? undefined : this.#clock() - this.#answeredAt;
  }

  async #bounded(read: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([read, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#waitMs)))]);
    clearTimeout(timer);
  }
}
