import type { BrokerClient } from '@hsm-broker/client';

/** One look at the fleet through GetFleetStatus. */
interface Sample {
  at: number;
  requests: Map<string, number>;
}

/**
 * Polls the broker's fleet status while a scenario runs, to tell when
 * traffic left the faulty appliances.
 */
export class FleetSampler {
  readonly #client: BrokerClient;
  readonly #samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(client: BrokerClient) {
    this.#client = client;
  }

  /** Starts polling every `everyMs`. */
  start(everyMs = 250): void {
    this.#timer = setInterval(() => void this.#sample(), everyMs);
  }

  /** Stops polling. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  async #sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const status = await this.#client.getFleetStatus({}, { deadlineMs: 1000 });
      this.#samples.push({
        at: Date.now(),
        requests: new Map(status.appliances.map((appliance) => [appliance.id, appliance.requestsTotal])),
      });
    } catch {
      // A broker restart or overload: this sample is missing, the next one counts.
    } finally {
      this.#busy = false;
    }
  }

  /** Milliseconds from `faultAt` until the last sample in which any of `ids` served more calls. */
  trafficLeftMs(faultAt: number, ids: readonly string[], until: number): number | undefined {
    let last: number | undefined;
    let previous: Sample | undefined;
    for (const sample of this.#samples) {
      if (previous && sample.at > faultAt && sample.at <= until && ids.some((id) => (sample.requests.get(id) ?? 0) > (previous?.requests.get(id) ?? 0))) {
        last = sample.at;
      }
      previous = sample;
    }
    return last === undefined ? 0 : last - faultAt;
  }
}
