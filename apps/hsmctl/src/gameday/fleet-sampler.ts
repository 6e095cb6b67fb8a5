import { ApplianceState, BreakerState, type BrokerClient } from '@hsm-broker/client';
import { wallClockMs } from '../load/mixed-load.js';

/** One appliance at one poll. */
export interface ApplianceSample {
  id: string;
  zone: string;
  /** HEALTHY, DEGRADED, OPEN, DRAINED, DOWN. */
  state: string;
  /** CLOSED, OPEN, HALF_OPEN. */
  breaker: string;
  /** Attempts routed to it so far (a failed attempt retried elsewhere counts here and there). */
  requestsTotal: number;
  failuresTotal: number;
  keysMissing: number;
}

/** The fleet at one poll; `appliances` is empty when the broker did not answer. */
export interface FleetSample {
  atMs: number;
  answered: boolean;
  appliances: ApplianceSample[];
}

/**
 * Polls GetFleetStatus at a fixed interval for the length of a game day, so
 * that traffic shift and repair can be read from the broker's own
 * per-appliance counters afterwards. Every instant derived from the samples
 * is known to the poll interval.
 */
export class FleetSampler {
  readonly #client: BrokerClient;
  readonly #intervalMs: number;
  readonly samples: FleetSample[] = [];
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(client: BrokerClient, intervalMs = 200) {
    this.#client = client;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<FleetSample[]> {
    this.#running = false;
    await this.#loop;
    return this.samples;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const started = performance.now();
      const atMs = wallClockMs();
      try {
        const status = await this.#client.getFleetStatus({}, { deadlineMs: 1000 });
        this.samples.push({
          atMs,
          answered: true,
          appliances: status.appliances.map((appliance) => ({
            id: appliance.id,
            zone: appliance.zone,
            state: ApplianceState[appliance.state] ?? String(appliance.state),
            breaker: BreakerState[appliance.breakerState] ?? String(appliance.breakerState),
            requestsTotal: Number(appliance.requestsTotal),
            failuresTotal: Number(appliance.failuresTotal),
            keysMissing: appliance.keysMissing,
          })),
        });
      } catch {
        this.samples.push({ atMs, answered: false, appliances: [] });
      }
      const wait = this.#intervalMs - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
