// Polls the broker's FleetService.GetFleetStatus at a fixed interval for the
// failover run: the per-appliance request counters say where the traffic
// went, and the states and breakers say why. One poll at a time (a slow
// answer delays the next poll rather than piling polls up), each with a
// deadline, and the loop ends when told to or at a hard time limit.
import { Metadata, credentials } from '@grpc/grpc-js';
import { FleetServiceClient, GetFleetStatusRequest } from '@hsm-broker/proto';
import { epochNow } from './latency-stats.mjs';

/**
 * What one poll saw of one appliance.
 * @typedef {object} ApplianceSample
 * @property {string} id
 * @property {string} zone
 * @property {number} requestsTotal  attempts routed to the appliance (a failed attempt retried elsewhere counts here and there)
 * @property {number} failuresTotal
 * @property {number} state          ApplianceState enum value
 * @property {number} breakerState   BreakerState enum value
 * @property {number} workers
 * @property {number} inFlight       calls running or queued for a session
 * @property {number} latencyEwmaMs
 * @property {number} workerRestartsTotal
 * @property {number} ejectionsTotal
 */

/**
 * One poll: `at` is the midpoint between sending the request and receiving
 * the answer (epoch ms), the best estimate of when the broker read its counters.
 * @typedef {{ at: number, rttMs: number, appliances: ApplianceSample[] }} FleetSample
 */

/**
 * @param {any} client a FleetServiceClient
 * @param {number} timeoutMs
 * @returns {Promise<any>}
 */
function getFleetStatus(client, timeoutMs) {
  return new Promise((resolve, reject) => {
    client.getFleetStatus(GetFleetStatusRequest.fromPartial({}), new Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/**
 * One fleet status read now (used before and after the run as well).
 * @param {string} address
 * @param {number} [timeoutMs]
 */
export async function readFleetStatus(address, timeoutMs = 5000) {
  const client = new FleetServiceClient(address, credentials.createInsecure());
  try {
    return await getFleetStatus(client, timeoutMs);
  } finally {
    client.close();
  }
}

/**
 * Starts polling. `stop()` ends the loop and resolves with every sample and
 * the polls that failed; the loop also ends by itself after `maxRunMs`.
 * @param {string} address
 * @param {{ intervalMs: number, maxRunMs: number }} options
 */
export function startFleetSampler(address, { intervalMs, maxRunMs }) {
  const client = new FleetServiceClient(address, credentials.createInsecure());
  /** @type {FleetSample[]} */
  const samples = [];
  /** @type {Array<{ at: number, error: string }>} */
  const failures = [];
  const hardStopAt = Date.now() + maxRunMs;
  let stopping = false;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  /** The poll in progress, so stop() can wait for it. */
  let current = Promise.resolve();

  const pollOnce = async () => {
    const sentAt = epochNow();
    try {
      const status = await getFleetStatus(client, Math.max(intervalMs * 10, 1000));
      const receivedAt = epochNow();
      samples.push({
        at: (sentAt + receivedAt) / 2,
        rttMs: receivedAt - sentAt,
        appliances: status.appliances.map((appliance) => ({
          id: appliance.id,
          zone: appliance.zone,
          requestsTotal: appliance.requestsTotal,
          failuresTotal: appliance.failuresTotal,
          state: appliance.state,
          breakerState: appliance.breakerState,
          workers: appliance.workers,
          inFlight: appliance.inFlight,
          latencyEwmaMs: appliance.latencyEwmaMs,
          workerRestartsTotal: appliance.workerRestartsTotal,
          ejectionsTotal: appliance.ejectionsTotal,
        })),
      });
    } catch (error) {
      failures.push({ at: sentAt, error: /** @type {any} */ (error)?.details ?? String(error) });
    }
    if (stopping || Date.now() >= hardStopAt) return;
    // Keep the period: the next poll is due intervalMs after this one was sent.
    timer = setTimeout(() => (current = pollOnce()), Math.max(0, sentAt + intervalMs - epochNow()));
  };
  current = pollOnce();

  return {
    /** Samples so far (the array grows while polling). */
    samples,
    /** Ends polling and resolves with what was collected. */
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      await current;
      client.close();
      return { samples, failures };
    },
  };
}
