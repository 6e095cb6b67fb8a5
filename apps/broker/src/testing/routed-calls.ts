import type { Fleet, RoutedCall } from '@hsm-broker/fleet';

/** Every call the fleet routed since the recorder started, in the order they settled. */
export interface RoutedCallRecorder {
  readonly calls: readonly RoutedCall[];
  /** Calls of `op` whose routing began at or after `since` (ms since epoch). */
  startedSince(since: number, op?: string): RoutedCall[];
  /** How many settled calls each appliance answered. */
  answeredBy(calls?: readonly RoutedCall[]): Map<string, number>;
}

/**
 * Records the fleet's routed-call reports, so tests assert on which
 * appliance answered and which were tried, counted when calls finish.
 * @internal
 */
export function recordRoutedCalls(fleet: Fleet): RoutedCallRecorder {
  const calls: RoutedCall[] = [];
  fleet.onCallRouted((call) => calls.push(call));
  return {
    calls,
    startedSince: (since, op) => calls.filter((call) => call.startedAt >= since && (op === undefined || call.op === op)),
    answeredBy(subset = calls) {
      const counts = new Map<string, number>();
      for (const call of subset) if (call.answeredBy !== undefined) counts.set(call.answeredBy, (counts.get(call.answeredBy) ?? 0) + 1);
      return counts;
    },
  };
}
