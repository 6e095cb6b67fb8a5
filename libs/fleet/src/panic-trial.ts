import { BrokerError, Code } from '@hsm-broker/errors';
import type { Appliance } from './appliance.js';
import type { ExecuteOptions } from './fleet-config.js';
import { operationCatalog } from './worker-operations.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';

/**
 * A call in panic mode goes to an appliance whose breaker is open, past the
 * breaker. An idempotent one gets no longer than a health probe would
 * (`probeTimeoutMs`): an appliance that is still down or reconnecting then
 * costs the caller a bounded wait and an UNAVAILABLE, not its whole
 * deadline, and the caller's remaining time is left for another appliance.
 */
export async function panicTrial<K extends WorkerOperation>(
  appliance: Appliance,
  op: K,
  args: WorkerArgs<K>,
  options: ExecuteOptions,
  probeTimeoutMs: number,
): Promise<WorkerResult<K>> {
  if (!operationCatalog[op].idempotent) return appliance.call(op, args, options);
  const bound = Date.now() + probeTimeoutMs;
  if (options.deadline !== undefined && options.deadline <= bound) return appliance.call(op, args, options);
  try {
    return await appliance.call(op, args, { ...options, deadline: bound });
  } catch (error: unknown) {
    const failure = BrokerError.from(error);
    if (failure.failureClass !== 'deadline' && failure.failureClass !== 'overload') throw failure;
    throw new BrokerError(Code.UNAVAILABLE, `appliance ${appliance.id} did not answer within ${String(probeTimeoutMs)} ms while every breaker was open`, {
      reason: 'PANIC_TRIAL_TIMEOUT',
      failureClass: 'appliance',
      details: { appliance: appliance.id },
      cause: failure,
    });
  }
}
