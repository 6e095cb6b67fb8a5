// Fleet and broker start-up for the report: a broker on a fresh embedded
// SoftHSM fleet of the given shape, the three bench keys on every appliance,
// and the sample inputs (a ciphertext and a signature it made).
import { applianceAccess, startBroker } from './broker-process.mjs';
import { benchSamples, createBenchKeys } from './bench-keys.mjs';
import { makeDataDir, removeDataDir, started } from './run-state.mjs';

/**
 * The embedded fleet shape (HSMB_LOCAL_FLEET) for a number of appliances:
 * one zone per appliance up to three, then two per zone.
 * @param {number} appliances 1, 2, 3 or 6
 */
export function fleetShape(appliances) {
  return appliances <= 3 ? `${appliances}x1` : `3x${Math.ceil(appliances / 3)}`;
}

/**
 * @typedef {object} BenchBroker
 * @property {import('./broker-process.mjs').StartedBroker} broker
 * @property {import('./bench-operations.mjs').BenchSamples} samples
 * @property {Record<string, { keyId: string, version: number, replicas: string[] }>} keys
 * @property {string} fleet
 * @property {number} workers  appliance worker processes in all
 * @property {() => Promise<Array<{ applianceId: string, softhsmConf: string, userPin: string }>>} stop
 *   stops the broker and its workers; resolves with how to reach its tokens directly (the ceiling)
 * @property {() => void} discard  removes its data directory (its tokens and PINs)
 */

/**
 * @param {{ workspaceRoot: string, appliances: number, workersPerAppliance: number, modulePath: string, progress: (line: string) => void, rsa?: boolean }} options
 *   `rsa: false` skips the RSA-2048 key (its generation and replication take seconds) when no RSA run follows
 * @returns {Promise<BenchBroker>}
 */
export async function startBenchBroker({ workspaceRoot, appliances, workersPerAppliance, modulePath, progress, rsa = true }) {
  const dataDir = makeDataDir();
  const fleet = fleetShape(appliances);
  const broker = await startBroker({ workspaceRoot, dataDir, localFleet: fleet, modulePath, workersPerAppliance, startTimeoutMs: 120_000 });
  started.broker = broker;
  progress(`broker serving on ${broker.address} after ${(broker.startupMs / 1000).toFixed(1)} s: fleet ${fleet} (${broker.appliances.join(', ')}), ${workersPerAppliance} workers per appliance`);
  const keys = await createBenchKeys(broker.address, broker.appliances, rsa ? ['sign', 'encrypt', 'rsa'] : ['sign', 'encrypt']);
  const samples = await benchSamples(broker.address, keys);
  return {
    broker,
    samples,
    keys,
    fleet,
    workers: broker.appliances.length * workersPerAppliance,
    stop: async () => {
      await broker.stop();
      started.broker = undefined;
      return broker.appliances.map((id) => applianceAccess(dataDir, id));
    },
    discard: () => removeDataDir(dataDir),
  };
}
