import type { FailureClass } from '@hsm-broker/errors';
import type { WorkerOperation } from './worker-operations.js';

/** How one call on one appliance ended: `ok`, or the failure class of its error. */
export type ApplianceCallOutcome = 'ok' | FailureClass;

/**
 * One finished call on one appliance, as measured there: time spent
 * waiting for a free session and time in total. Metrics read these; the
 * router keeps its own statistics.
 */
export interface ApplianceCallSample {
  applianceId: string;
  zone: string;
  op: WorkerOperation;
  outcome: ApplianceCallOutcome;
  /** The stable reason of the failure, when it failed. */
  reason?: string;
  /** Probes and maintenance (replication, inventory) rather than a caller's request. */
  background: boolean;
  /** From the call's start to its end, waiting included. */
  latencyMs: number;
  /** Waiting for a free worker (session); 0 for calls sent to a clone endpoint. */
  queueWaitMs: number;
}

/** Listener for {@link ApplianceCallSample}s. Must not throw: it runs on the call path. */
export type ApplianceCallListener = (sample: ApplianceCallSample) => void;
