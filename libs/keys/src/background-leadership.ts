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
  /** Called whenever this replica gains or loses leadership. Listeners must not throw. */
  onChange(listener: (leader: boolean, term: number) => void): void;
}

/** The leadership of a broker that shares its store with no one: always the leader, term 1. */
export const soleLeadership: BackgroundLeadership = {
  isLeader: true,
  term: 1,
  onChange: () => undefined,
};
