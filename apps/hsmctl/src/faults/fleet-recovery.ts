import { setTimeout as sleep } from 'node:timers/promises';
import { ApplianceState, BreakerState, type BrokerClient } from '@hsm-broker/client';

/**
 * Waits until every appliance is healthy with a closed breaker, or the time
 * runs out; resolves with whether it got there. A check that started while
 * the fleet was still coming back would measure the recovery, not the data.
 */
export async function waitForHealthyFleet(client: BrokerClient, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const status = await client.getFleetStatus({}, { deadlineMs: 5000 });
      const healthy = status.appliances.every(
        (appliance) => appliance.state === ApplianceState.HEALTHY && appliance.breakerState === BreakerState.CLOSED,
      );
      if (healthy) return true;
    } catch {
      // The broker itself may be restarting; keep asking until the deadline.
    }
    if (Date.now() >= deadline) return false;
    await sleep(500);
  }
}
