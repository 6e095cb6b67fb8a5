import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultRecord } from '../load/call-history.js';
import { wallClockMs } from '../load/mixed-load.js';
import { describeFault } from './fault-action.js';
import type { FaultDriver } from './fault-driver.js';
import type { TimedFault } from './timed-fault.js';

/**
 * Carries out timed faults in order, each at its time from `originMs`
 * (`performance.now()` at the start of the run), and reports each as a
 * {@link FaultRecord}. A fault the driver fails to carry out is reported with
 * its error and the timeline goes on: the run is still worth checking, and the
 * report says what did not happen. Stops early when `signal` aborts.
 */
export async function runFaultTimeline(
  steps: readonly TimedFault[],
  driver: FaultDriver,
  options: { originMs: number; onRecord: (record: FaultRecord) => void; signal?: AbortSignal },
): Promise<void> {
  for (const step of steps) {
    const wait = options.originMs + step.atMs - performance.now();
    if (wait > 0) {
      try {
        await sleep(wait, undefined, options.signal === undefined ? {} : { signal: options.signal });
      } catch {
        return;
      }
    }
    if (options.signal?.aborted === true) return;
    const startMs = wallClockMs();
    let error: string | undefined;
    try {
      await driver.apply(step.action);
    } catch (failure: unknown) {
      error = failure instanceof Error ? failure.message : String(failure);
    }
    options.onRecord({
      type: 'fault',
      startMs,
      endMs: wallClockMs(),
      action: step.action,
      description: describeFault(step.action),
      ...(error === undefined ? {} : { error }),
    });
  }
}
