import type { ApplianceStatus, BrokerClient } from '@hsm-broker/client';

/** One look at the fleet through GetFleetStatus. */
export interface FleetSample {
  at: number;
  appliances: Map<string, ApplianceStatus>;
}

/**
 * Polls the broker's fleet status while a scenario runs, to tell from the
 * broker's own counters when traffic left the faulty appliances, when it came
 * back, and what the broker saw (breaker openings, keys present).
 */
export class FleetSampler {
  readonly #client: BrokerClient;
  readonly #samples: FleetSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(client: BrokerClient) {
    this.#client = client;
  }

  /** Every sample taken so far, oldest first. */
  get samples(): readonly FleetSample[] {
    return this.#samples;
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
      this.#samples.push({ at: Date.now(), appliances: new Map(status.appliances.map((appliance) => [appliance.id, appliance])) });
    } catch {
      // A broker restart or overload: this sample is missing, the next one counts.
    } finally {
      this.#busy = false;
    }
  }

  /** Calls `ids` served between consecutive samples in (`from`, `until`]; a broker restart (counters reset) counts from zero. */
  requestsBetween(ids: readonly string[], from: number, until: number): number {
    let total = 0;
    let previous: FleetSample | undefined;
    for (const sample of this.#samples) {
      if (previous && sample.at > from && sample.at <= until) {
        for (const id of ids) {
          const now = sample.appliances.get(id)?.requestsTotal ?? 0;
          const before = previous.appliances.get(id)?.requestsTotal ?? 0;
          total += now >= before ? now - before : now;
        }
      }
      previous = sample;
    }
    return total;
  }

  /** Milliseconds from `faultAt` until the last sample in which any of `ids` served more calls. */
  trafficLeftMs(faultAt: number, ids: readonly string[], until: number): number | undefined {
    let last: number | undefined;
    let previous: FleetSample | undefined;
    for (const sample of this.#samples) {
      if (previous && sample.at > faultAt && sample.at <= until && ids.some((id) => (sample.appliances.get(id)?.requestsTotal ?? 0) > (previous?.appliances.get(id)?.requestsTotal ?? 0))) {
        last = sample.at;
      }
      previous = sample;
    }
    return last === undefined ? 0 : last - faultAt;
  }

  /** The first sample after `from` for which `test` holds, or undefined. */
  firstAfter(from: number, test: (sample: FleetSample) => boolean): FleetSample | undefined {
    return this.#samples.find((sample) => sample.at > from && test(sample));
  }
}
