// Where the traffic went during the failover run, from the broker's own
// per-appliance counters (fleet-sampler.mjs). `requests_total` counts
// attempts routed to an appliance, including attempts that failed there and
// were retried on another appliance, so a zone's share of the attempts is
// exactly the share of traffic that still reached it.
//
// The counters are read by polling, so every instant derived here is known to
// the poll interval: a time is reported as the poll at which the condition
// was first seen, which is an upper bound; the poll before it is the lower.

/**
 * Cumulative attempts of one zone and of the whole fleet, per poll.
 * @typedef {{ at: number, zone: number, all: number }} ZonePoint
 */

/**
 * @param {import('./fleet-sampler.mjs').FleetSample[]} samples
 * @param {string} zone
 * @returns {ZonePoint[]}
 */
export function zoneSeries(samples, zone) {
  return samples.map((sample) => ({
    at: sample.at,
    zone: sample.appliances.filter((appliance) => appliance.zone === zone).reduce((sum, appliance) => sum + appliance.requestsTotal, 0),
    all: sample.appliances.reduce((sum, appliance) => sum + appliance.requestsTotal, 0),
  }));
}

/** Index of the last point at or before `at` (0 when there is none). */
function lastAtOrBefore(series, at) {
  let found = 0;
  for (let i = 0; i < series.length && series[i].at <= at; i++) found = i;
  return found;
}

/** Index of the first point at or after `at` (the last point when there is none). */
function firstAtOrAfter(series, at) {
  const index = series.findIndex((point) => point.at >= at);
  return index === -1 ? series.length - 1 : index;
}

/**
 * Attempts on the zone and on the fleet between two instants, read at the
 * first polls at or after each of them.
 * @param {ZonePoint[]} series
 * @param {number} fromMs
 * @param {number} toMs
 */
export function attemptsBetween(series, fromMs, toMs) {
  if (series.length === 0) return { zone: 0, all: 0, share: null };
  const from = series[firstAtOrAfter(series, fromMs)];
  const to = series[firstAtOrAfter(series, toMs)];
  const zone = to.zone - from.zone;
  const all = to.all - from.all;
  return { zone, all, share: all > 0 ? zone / all : null };
}

/**
 * How long after `fromMs` (the fault) the zone stopped receiving traffic:
 * the first poll P from which on, until `toMs` (the faults cleared), the
 * zone received at most `maxShare` of all attempts. Reported as P - fromMs,
 * an upper bound; the poll before P bounds it from below.
 * @param {ZonePoint[]} series
 * @param {{ fromMs: number, toMs: number, maxShare: number }} window
 */
export function timeOffZone(series, { fromMs, toMs, maxShare }) {
  if (series.length === 0) return null;
  const start = lastAtOrBefore(series, fromMs);
  const end = firstAtOrAfter(series, toMs);
  for (let k = start + 1; k <= end; k++) {
    const tailZone = series[end].zone - series[k].zone;
    const tailAll = series[end].all - series[k].all;
    if (tailZone <= maxShare * tailAll) {
      return {
        ms: series[k].at - fromMs,
        lowerBoundMs: Math.max(0, series[k - 1].at - fromMs),
        /** Attempts the zone received from the poll before the fault to P. */
        zoneAttemptsUntil: series[k].zone - series[start].zone,
        /** And after P, until the faults were cleared. */
        zoneAttemptsAfter: tailZone,
        allAttemptsAfter: tailAll,
      };
    }
  }
  return null;
}

/**
 * How long after `fromMs` (faults cleared) traffic came back to the zone:
 * the first poll that saw an attempt on it, and the first polls at which its
 * share over the last `windowMs` reached half of, and 90 % of,
 * `baselineShare` (its share before the fault).
 * @param {ZonePoint[]} series
 * @param {{ fromMs: number, toMs: number, baselineShare: number | null, windowMs: number }} window
 */
export function timeBackToZone(series, { fromMs, toMs, baselineShare, windowMs }) {
  const result = { firstAttemptMs: /** @type {number | null} */ (null), halfShareMs: /** @type {number | null} */ (null), ninetyPercentShareMs: /** @type {number | null} */ (null) };
  if (series.length === 0) return result;
  const start = lastAtOrBefore(series, fromMs);
  for (let k = start + 1; k < series.length && series[k].at <= toMs; k++) {
    const elapsed = series[k].at - fromMs;
    if (result.firstAttemptMs === null && series[k].zone > series[start].zone) result.firstAttemptMs = elapsed;
    if (!baselineShare) continue;
    // The window may not reach back before the clear: only traffic after it counts.
    const from = Math.max(start, lastAtOrBefore(series, series[k].at - windowMs));
    if (series[k].at - series[from].at < windowMs / 2) continue;
    const all = series[k].all - series[from].all;
    const share = all > 0 ? (series[k].zone - series[from].zone) / all : 0;
    if (result.halfShareMs === null && share >= 0.5 * baselineShare) result.halfShareMs = elapsed;
    if (result.ninetyPercentShareMs === null && share >= 0.9 * baselineShare) result.ninetyPercentShareMs = elapsed;
  }
  return result;
}

/**
 * The zone's share of attempts in consecutive buckets of `bucketMs` from
 * `fromMs` to `toMs` (for the JSON, and the printed ramp after recovery),
 * each bucket's start given relative to `originMs`.
 * @param {ZonePoint[]} series
 * @param {{ fromMs: number, toMs: number, bucketMs: number, originMs: number }} window
 */
export function shareTimeline(series, { fromMs, toMs, bucketMs, originMs }) {
  const buckets = [];
  for (let at = fromMs; at + bucketMs <= toMs + 1; at += bucketMs) {
    const { zone, all, share } = attemptsBetween(series, at, at + bucketMs);
    buckets.push({ fromMs: Math.round(at - originMs), zone, all, share });
  }
  return buckets;
}

const applianceStates = ['UNSPECIFIED', 'HEALTHY', 'DEGRADED', 'OPEN', 'DRAINED', 'DOWN'];
const breakerStates = ['UNSPECIFIED', 'closed', 'open', 'half-open'];

/**
 * Every change of state, breaker or worker count of the zone's appliances as
 * the polls saw them, with times relative to `originMs` (the fault).
 * @param {import('./fleet-sampler.mjs').FleetSample[]} samples
 * @param {string} zone
 * @param {number} originMs
 */
export function zoneStateChanges(samples, zone, originMs) {
  /** @type {Map<string, string>} */
  const last = new Map();
  const changes = [];
  for (const sample of samples) {
    for (const appliance of sample.appliances.filter((candidate) => candidate.zone === zone)) {
      const state = `${applianceStates[appliance.state] ?? appliance.state}, breaker ${breakerStates[appliance.breakerState] ?? appliance.breakerState}, ${appliance.workers} worker${appliance.workers === 1 ? '' : 's'}`;
      if (last.get(appliance.id) === state) continue;
      changes.push({ atMs: sample.at - originMs, appliance: appliance.id, state, ...(last.has(appliance.id) ? {} : { initial: true }) });
      last.set(appliance.id, state);
    }
  }
  return changes;
}

/**
 * Every poll, compactly, for reading the run afterwards: its round trip, and
 * per appliance its attempts so far, calls in flight (running or queued),
 * latency EWMA, failures so far and workers, with times relative to `originMs`.
 * @param {import('./fleet-sampler.mjs').FleetSample[]} samples
 * @param {number} originMs
 */
export function compactSamples(samples, originMs) {
  return {
    columns: ['requestsTotal', 'inFlight', 'latencyEwmaMs', 'failuresTotal', 'workers'],
    polls: samples.map((sample) => ({
      atMs: Math.round(sample.at - originMs),
      /** The poll's round trip: the broker's gRPC event loop answers it, so a stall there shows here. */
      rttMs: Number(sample.rttMs.toFixed(1)),
      appliances: Object.fromEntries(
        sample.appliances.map((appliance) => [
          appliance.id,
          [appliance.requestsTotal, appliance.inFlight, Number(appliance.latencyEwmaMs.toFixed(2)), appliance.failuresTotal, appliance.workers],
        ]),
      ),
    })),
  };
}
