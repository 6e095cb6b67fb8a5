/** What the router needs to know about one appliance. */
export interface RouteCandidate {
  id: string;
  zone: string;
  /** Calls running or queued. */
  inFlight: number;
  /** Calls it can run at once (its sessions). */
  capacity: number;
  latencyEwmaMs: number;
  /** Slow-start weight, 0..1: a recovering appliance gets a growing share. */
  weight: number;
  /** Breaker closed. */
  healthy: boolean;
  /** Has a running worker, is not drained and its zone is not fenced. */
  inRotation: boolean;
  /**
   * False when its last health probe failed: in panic mode (every breaker
   * open) only appliances that still answer probes are tried, so a fleet
   * that is down altogether refuses at once instead of every call waiting
   * out a hang. Undefined counts as answering.
   */
  answersProbes?: boolean;
}

/** The choice and whether it was made in panic mode (every breaker open). */
export interface RouteChoice<T extends RouteCandidate> {
  appliance: T;
  panic: boolean;
}

/** How to choose. */
export interface RouteOptions {
  /** Zones by preference; the local zone first. Zones not listed come last. */
  zoneOrder: readonly string[];
  /** Appliances already tried for this request. */
  exclude: ReadonlySet<string>;
  /** Zones already tried: a retry prefers another zone when one has capacity. */
  avoidZones: ReadonlySet<string>;
  random?: () => number;
}

function score(candidate: RouteCandidate): number {
  // Outstanding work times how slow it has been, boosted while slow-starting.
  return ((candidate.inFlight + 1) * Math.max(candidate.latencyEwmaMs, 0.1)) / Math.max(candidate.weight, 0.05);
}

function powerOfTwo<T extends RouteCandidate>(pool: T[], random: () => number): T {
  if (pool.length === 1) return pool[0];
  const i = Math.floor(random() * pool.length);
  let j = Math.floor(random() * (pool.length - 1));
  if (j >= i) j++;
  const a = pool[i];
  const b = pool[j];
  return score(a) <= score(b) ? a : b;
}

/**
 * Picks the appliance for one attempt. Zones form priority levels (local
 * first, as Envoy priorities or Luna standby members): a level serves while
 * it has spare sessions, and traffic spills to the next level only when the
 * level above is saturated or has no healthy appliance. Within a level,
 * power-of-two-choices on outstanding requests weighted by latency. When no
 * breaker is closed the router panics and uses every appliance in rotation
 * that still answers health probes rather than none; when none does, there
 * is no choice (the caller gets UNAVAILABLE at once).
 */
export function chooseAppliance<T extends RouteCandidate>(candidates: readonly T[], options: RouteOptions): RouteChoice<T> | undefined {
  const random = options.random ?? Math.random;
  const pool = candidates.filter((candidate) => candidate.inRotation && !options.exclude.has(candidate.id));
  if (pool.length === 0) return undefined;
  let healthy = pool.filter((candidate) => candidate.healthy);
  if (healthy.length === 0) {
    const answering = pool.filter((candidate) => candidate.answersProbes !== false);
    const leastBusy = [...answering].sort((a, b) => a.inFlight - b.inFlight)[0];
    return leastBusy === undefined ? undefined : { appliance: leastBusy, panic: true };
  }
  const elsewhere = healthy.filter((candidate) => !options.avoidZones.has(candidate.zone));
  if (elsewhere.length > 0) healthy = elsewhere;
  const rank = (zone: string): number => {
    const index = options.zoneOrder.indexOf(zone);
    return index === -1 ? options.zoneOrder.length : index;
  };
  const levels = [...new Set(healthy.map((candidate) => rank(candidate.zone)))].sort((a, b) => a - b);
  const spareIn = (level: number): T[] =>
    healthy.filter((candidate) => rank(candidate.zone) === level && candidate.inFlight < candidate.capacity);
  for (const [index, level] of levels.entries()) {
    const spare = spareIn(level);
    if (spare.length === 0) continue;
    const pick = powerOfTwo(spare, random);
    // A slow-starting appliance takes only its weight's share of the level's
    // traffic; the rest keeps flowing to the next level while it ramps up.
    if (pick.weight < 1 && random() > pick.weight && levels.slice(index + 1).some((next) => spareIn(next).length > 0)) continue;
    return { appliance: pick, panic: false };
  }
  // Everything is saturated: queue where the wait should be shortest.
  return { appliance: powerOfTwo(healthy, random), panic: false };
}
