import type { WorkerOperation } from './worker-operations.js';

/**
 * How one attempt ended: the appliance answered, it failed, or it was
 * still running when the call settled (the loser of a hedge, whose answer
 * is dropped).
 */
export type AttemptOutcome = 'answered' | 'failed' | 'pending';

/** One attempt of a routed call on one appliance. */
export interface CallAttempt {
  applianceId: string;
  zone: string;
  /** Sent as a hedge, beside a first attempt that was slow to answer. */
  hedge: boolean;
  /** Made while every breaker was open (panic mode). */
  panic: boolean;
  outcome: AttemptOutcome;
  /** The failure's stable reason, when it failed. */
  reason?: string;
}

/**
 * A caller's call as the router handled it, reported once it settled:
 * every appliance tried, in order, and the one whose answer was returned.
 * Operators and tests read routing from these instead of from request
 * counters, which count a call when it starts rather than when it ends.
 */
export interface RoutedCall {
  op: WorkerOperation;
  /** When routing began (ms since epoch): tells calls made after an event from those already under way. */
  startedAt: number;
  attempts: CallAttempt[];
  /** The appliance whose result the caller got; undefined when the call failed. */
  answeredBy: string | undefined;
}

/** Listener for {@link RoutedCall} reports. */
export type RoutedCallListener = (call: RoutedCall) => void;
