import { isIP } from 'node:net';
import { BrokerError } from '@hsm-broker/errors';
import { replicaScheme } from './replica-resolver.js';

/**
 * Schemes grpc-js resolves itself. A target with one of them is passed
 * through untouched, and must then be the only address: `dns:///name:port`
 * already names every replica behind one DNS name.
 */
const schemeTargets = ['dns:', 'ipv4:', 'ipv6:', 'unix:', 'unix-abstract:'] as const;

/** The grpc-js channel target for one or several broker replicas. */
export interface ReplicaTarget {
  /** What the channel connects to. */
  target: string;
  /** The `host:port` entries given, in order (the target itself for a scheme target). */
  replicas: readonly string[];
}

/**
 * Turns the client's `address` option into one channel target.
 *
 * - one `host:port` or one grpc-js target (`dns:///brokers:50051`,
 *   `ipv4:10.0.0.1:50051,10.0.0.2:50051`) is used as it is;
 * - several `host:port` entries (an array, or one string separated by
 *   commas) become one target of the client's own resolver, which looks each
 *   host up and hands every address to grpc-js's `round_robin` policy.
 *
 * Throws INVALID_ARGUMENT naming `address` (and the entry) when an entry is
 * empty, has no port, a port outside 1 to 65535, or mixes a scheme target
 * with other entries.
 */
export function parseReplicaTarget(address: string | readonly string[]): ReplicaTarget {
  const given: readonly unknown[] = typeof address === 'string' ? [address] : Array.isArray(address) ? address : [address];
  const entries: string[] = [];
  for (const item of given) {
    if (typeof item !== 'string') {
      throw BrokerError.invalidArgument('address', `must be host:port strings, got ${typeof item}`);
    }
    // A scheme target may carry commas of its own (ipv4:a,b): keep it whole.
    if (schemeTargets.some((scheme) => item.trim().startsWith(scheme))) entries.push(item.trim());
    else entries.push(...item.split(',').map((entry) => entry.trim()));
  }
  if (entries.length === 0 || entries.every((entry) => entry === '')) {
    throw BrokerError.invalidArgument('address', `must be a non-empty host:port, got '${String(address)}'`);
  }
  const schemeEntry = entries.find((entry) => schemeTargets.some((scheme) => entry.startsWith(scheme)));
  if (schemeEntry !== undefined) {
    if (entries.length > 1) {
      throw BrokerError.invalidArgument(
        'address',
        `'${schemeEntry}' names its replicas itself and cannot be combined with other addresses`,
      );
    }
    return { target: schemeEntry, replicas: [schemeEntry] };
  }
  for (const entry of entries) checkHostPort(entry);
  if (entries.length === 1) return { target: entries[0] ?? '', replicas: entries };
  return { target: `${replicaScheme}:///${entries.join(',')}`, replicas: entries };
}

/** Checks one `host:port` or `[v6]:port` entry; throws naming it. */
function checkHostPort(entry: string): void {
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(entry);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined) {
    throw BrokerError.invalidArgument('address', `'${entry}' is not host:port (IPv6 as [addr]:port)`);
  }
  if (match[1] !== undefined && isIP(host) !== 6) {
    throw BrokerError.invalidArgument('address', `'${entry}': '${host}' in brackets is not an IPv6 address`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw BrokerError.invalidArgument('address', `'${entry}': port must be 1 to 65535`);
  }
}
