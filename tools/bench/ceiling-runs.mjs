// The ceiling: pkcs11js loops straight on the broker's own SoftHSM tokens and
// keys (broker stopped, so the tokens are not shared), doing the token work a
// broker worker does for the same request. No gRPC, no IPC, no broker.
import { cleanEnvironment } from './broker-process.mjs';
import { messageBytes, plaintextBytes } from './bench-operations.mjs';
import { summarize } from './latency-stats.mjs';
import { runMeasuringProcesses } from './measuring-processes.mjs';
import { startCpuWindow, withOther } from './process-cpu.mjs';

/**
 * CPU per process group over the measured window of a run that starts now:
 * opens after the warm-up, closes at the end of the window.
 * @param {Record<string, () => number[]>} groups
 * @param {{ warmupMs: number, durationMs: number }} window
 * @returns {Promise<Record<string, number | null>>}
 */
export function cpuDuringWindow(groups, { warmupMs, durationMs }) {
  return new Promise((resolvePercent) => {
    setTimeout(() => {
      const window = startCpuWindow(groups);
      setTimeout(() => resolvePercent(withOther(window.close())), durationMs);
    }, warmupMs);
  });
}

/**
 * `processes` direct loops, spread over the appliances the way the broker
 * spreads its workers.
 * @param {Array<{ applianceId: string, softhsmConf: string, userPin: string }>} access
 * @param {import('./bench-operations.mjs').BenchOperation} operation  one with a `direct` operation
 * @param {{ keyId: string, version: number }} key
 * @param {number} processes
 * @param {{ warmupMs: number, durationMs: number, modulePath: string }} options
 */
export async function measureCeiling(access, operation, key, processes, options) {
  /** @type {Promise<Record<string, number | null>>} */
  let cpu = Promise.resolve({});
  const { infos, reports } = await runMeasuringProcesses({
    script: new URL('./direct-pkcs11-worker.mjs', import.meta.url),
    processes: Array.from({ length: processes }, (_, index) => {
      const appliance = access[index % access.length];
      return {
        env: { SOFTHSM2_CONF: appliance.softhsmConf },
        init: {
          operation: operation.direct,
          modulePath: options.modulePath,
          tokenLabel: appliance.applianceId,
          userPin: appliance.userPin,
          label: `hsmb:${key.keyId}:${key.version}`,
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          messageBytes,
          plaintextBytes,
          // The broker's GCM additional data is its ciphertext header: magic, version, id length, id, key version.
          aadBytes: 4 + Buffer.byteLength(key.keyId) + 4,
        },
      };
    }),
    baseEnv: cleanEnvironment(),
    readyTimeoutMs: 15_000,
    runTimeoutMs: options.warmupMs + options.durationMs + 15_000,
    onGo: (pids) => (cpu = cpuDuringWindow({ measuring: () => pids }, options)),
  });
  return { ...summarize(reports, options.durationMs), cpu: await cpu, library: /** @type {any} */ (infos[0])?.library };
}
