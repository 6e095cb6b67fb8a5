// Fleet and broker start-up for the report: a broker on a fresh embedded
// SoftHSM fleet of the given shape, the three bench keys on every appliance,
// and the sample inputs (a ciphertext and a signature it made).
import { credentials } from '@grpc/grpc-js';
import { FaultKind, FleetServiceClient, InjectFaultRequest } from '@hsm-broker/proto';
import { applianceAccess, startBroker } from './broker-process.mjs';
import { fleetCall } from './failover-run.mjs';
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
 * @param {{ workspaceRoot: string, appliances: number, workersPerAppliance: number, sessionsPerWorker?: number, applianceLatencyMs?: number, modulePath: string, progress: (line: string) => void, rsa?: boolean }} options
 *   `applianceLatencyMs` adds that much to every appliance call once the keys exist (an injected LATENCY fault),
 *   standing in for the network round trip to a remote HSM
 *   `rsa: false` skips the RSA-2048 key (its generation and replication take seconds) when no RSA run follows
 * @returns {Promise<BenchBroker>}
 */
export async function startBenchBroker({ workspaceRoot, appliances, workersPerAppliance, sessionsPerWorker = 1, applianceLatencyMs = 0, modulePath, progress, rsa = true }) {
  const dataDir = makeDataDir();
  const fleet = fleetShape(appliances);
  const broker = await startBroker({ workspaceRoot, dataDir, localFleet: fleet, modulePath, workersPerAppliance, startTimeoutMs: 120_000, env: {
      HSMB_SESSIONS_PER_WORKER: String(sessionsPerWorker),
      ...(applianceLatencyMs > 0 ? { HSMB_FAULT_INJECTION: '1' } : {}),
    },
  });
  started.broker = broker;
  progress(`broker serving on ${broker.address} after ${(broker.startupMs / 1000).toFixed(1)} s: fleet ${fleet} (${broker.appliances.join(', ')}), ${workersPerAppliance} workers per appliance, ${sessionsPerWorker} sessions each`);
  const keys = await createBenchKeys(broker.address, broker.appliances, rsa ? ['sign', 'encrypt', 'rsa'] : ['sign', 'encrypt']);
  const samples = await benchSamples(broker.address, keys);
  if (applianceLatencyMs > 0) {
    const fleetClient = new FleetServiceClient(broker.address, credentials.createInsecure());
    try {
      await Promise.all(
        broker.appliances.map((applianceId) =>
          fleetCall(fleetClient, 'injectFault', InjectFaultRequest.fromPartial({ applianceId, kind: FaultKind.LATENCY, probability: 0, latencyMs: applianceLatencyMs, durationMs: 0 })),
        ),
      );
    } finally {
      fleetClient.close();
    }
    progress(`every appliance call now takes ${applianceLatencyMs} ms longer (injected LATENCY, standing in for a network round trip)`);
  }
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
