/**
 * Which replica runs the background work (replica reconciler, deletion-window
 * executor, automatic rotation, wipe detection). With a shared store only one
 * replica leads at a time; with the embedded store the one broker always does.
 */
export interface BackgroundLeadership {
  /** True while this replica may run background work. Check before each piece of work. */
  readonly isLeader: boolean;
  /**
   * Leadership terms only grow: each new leader takes the next term, so logs
   * and tests can tell one leader's work from the next one's. 0 while not leading.
   */
  readonly term: number;
  /** Called whenever this replica gains or loses leadership, never after {@link stop}. Listeners must not throw. */
  onChange(listener: (leader: boolean, term: number) => void): void;
  /**
   * Leaves the election: gives the leadership up (another replica takes it
   * over), `isLeader` is false from now on and no listener is called again,
   * whatever the store still reports.
   */
  stop(): void;
}

/** The leadership of a broker that shares its store with no one: the leader, term 1, until stopped; it never changes, so no listener is ever called. */
export function soleLeadership(): BackgroundLeadership {
  let stopped = false;
  return {
    get isLeader() {
      return !stopped;
    },
    get term() {
      return stopped ? 0 : 1;
    },
    onChange: () => undefined,
    stop() {
      stopped = true;
    },
  };
}
