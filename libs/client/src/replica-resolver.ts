import { lookup } from 'node:dns/promises';
import { experimental, status as GrpcStatus, type ChannelOptions } from '@grpc/grpc-js';

/**
 * The scheme of targets naming several broker replicas by `host:port`
 * (`hsmb-replicas:///broker-1:50051,broker-2:50051`). grpc-js resolves
 * `ipv4:` lists of literal addresses and one `dns:` name, but not a list of
 * host names, which is what a compose file or a static replica list holds.
 */
export const replicaScheme = 'hsmb-replicas';

/**
 * The shortest time between two lookups. grpc-js asks for a new resolution
 * every time a connection fails; answering each at once would, while a
 * replica is down, re-resolve and hand the balancer a fresh list in a tight
 * loop (grpc-js's own DNS resolver waits 30 s for the same reason).
 */
const minResolutionIntervalMs = 2_000;

/** One `host:port` entry of a replica target. */
interface ReplicaEntry {
  host: string;
  port: number;
}

/**
 * Resolves every entry of an `hsmb-replicas:` target and reports each
 * address as its own endpoint, so `round_robin` spreads calls over all of
 * them. An entry that does not resolve is left out while others do (a
 * replica whose name is gone is a replica that is down); only when none
 * resolves is the resolution an error, which grpc-js retries with backoff.
 * grpc-js asks again (`updateResolution`) whenever a connection fails, so
 * a replica that moved is found again, at most once per
 * {@link minResolutionIntervalMs}.
 */
class ReplicaResolver implements experimental.Resolver {
  readonly #entries: readonly ReplicaEntry[];
  readonly #listener: experimental.ResolverListener;
  #generation = 0;
  #resolving = false;
  #lastResolvedAt = -Infinity;
  #deferred: NodeJS.Timeout | undefined;

  constructor(target: experimental.GrpcUri, listener: experimental.ResolverListener, _options: ChannelOptions) {
    this.#listener = listener;
    this.#entries = parseEntries(target.path);
  }

  updateResolution(): void {
    if (this.#resolving || this.#deferred !== undefined) return;
    const wait = this.#lastResolvedAt + minResolutionIntervalMs - performance.now();
    if (wait > 0) {
      this.#deferred = setTimeout(() => {
        this.#deferred = undefined;
        this.updateResolution();
      }, wait);
      this.#deferred.unref();
      return;
    }
    this.#resolving = true;
    this.#lastResolvedAt = performance.now();
    const generation = this.#generation;
    void this.#resolve().then((endpoints) => {
      this.#resolving = false;
      // destroy() was called meanwhile: nobody wants this answer.
      if (generation !== this.#generation) return;
      if (endpoints.length === 0) {
        this.#listener(
          experimental.statusOrFromError({
            code: GrpcStatus.UNAVAILABLE,
            details: `no broker replica address resolved (${this.#entries.map(entryText).join(', ')})`,
          }),
          {},
          null,
          '',
        );
        return;
      }
      this.#listener(experimental.statusOrFromValue(endpoints), {}, null, '');
    });
  }

  destroy(): void {
    this.#generation += 1;
    this.#resolving = false;
    clearTimeout(this.#deferred);
    this.#deferred = undefined;
  }

  async #resolve(): Promise<experimental.Endpoint[]> {
    const seen = new Set<string>();
    const endpoints: experimental.Endpoint[] = [];
    const answers = await Promise.all(
      this.#entries.map(async (entry) => {
        try {
          return (await lookup(entry.host, { all: true })).map((found) => ({ host: found.address, port: entry.port }));
        } catch {
          return [];
        }
      }),
    );
    for (const address of answers.flat()) {
      const key = `${address.host}|${String(address.port)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      endpoints.push({ addresses: [address] });
    }
    return endpoints;
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    // TLS checks every replica's certificate against this name: the first
    // entry's host, unless the caller overrides it (grpc.ssl_target_name_override).
    const first = parseEntries(target.path)[0];
    if (first === undefined) throw new Error(`${replicaScheme}: no address in '${target.path}'`);
    return first.host.includes(':') ? `[${first.host}]:${String(first.port)}` : `${first.host}:${String(first.port)}`;
  }
}

function parseEntries(path: string): ReplicaEntry[] {
  return path
    .split(',')
    .map((text) => experimental.splitHostPort(text.trim()))
    .filter((hostPort): hostPort is experimental.HostPort => hostPort !== null && hostPort.port !== undefined)
    .map((hostPort) => ({ host: hostPort.host, port: hostPort.port ?? 0 }));
}

function entryText(entry: ReplicaEntry): string {
  return `${entry.host}:${String(entry.port)}`;
}

let registered = false;

/**
 * Registers the `hsmb-replicas:` scheme with grpc-js, once per process.
 * Called by `createBrokerClient` before it makes a channel.
 */
export function registerReplicaResolver(): void {
  if (registered) return;
  experimental.registerResolver(replicaScheme, ReplicaResolver);
  registered = true;
}
