import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, loadConfig, startBroker, type RunningBroker } from '@hsm-broker/broker';

/** How to start a {@link BrokerUnderTest}. */
export interface BrokerUnderTestOptions {
  /** Starts the broker with `HSMB_FAULT_INJECTION=1`, so that InjectFault is accepted. */
  faultInjection?: boolean;
  /**
   * Seconds between the broker's own replica reconciliations (default 60).
   * A long interval keeps the background run from repairing, before the
   * test asks for it, what the test damaged.
   */
  reconcileIntervalSeconds?: number;
  /** Further HSMB_* settings (TLS files, HSMB_POLICY). */
  env?: Record<string, string>;
}

/**
 * A real broker, in this process, on a fresh local SoftHSM fleet of three
 * zones with one appliance each, listening on a free loopback port. Its
 * data directory (tokens, PINs, database) is temporary and removed on
 * dispose.
 */
export interface BrokerUnderTest extends AsyncDisposable {
  /** `127.0.0.1:PORT`, for the client and for hsmctl's `--address`. */
  readonly address: string;
  readonly dataDir: string;
  readonly broker: RunningBroker;
  /** Stops the broker and removes its data directory. Safe to call twice. */
  dispose(): Promise<void>;
}

/**
 * Starts a broker the way the executable does (configuration through
 * `loadConfig`, so it is validated exactly as in production), but from a
 * fixed environment rather than this process's: settings in the developer's
 * shell must not change what the tests see.
 */
export async function startBrokerUnderTest(options: BrokerUnderTestOptions = {}): Promise<BrokerUnderTest> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hsmb-e2e-'));
  // The embedded backup HSM lives beside the data directory by default.
  const remove = (): void => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}-backup-hsm`, { recursive: true, force: true });
  };
  let broker: RunningBroker;
  try {
    // Settings that have no environment variable go through a configuration
    // file (YAML, of which JSON is a part).
    let configFile: string | undefined;
    if (options.reconcileIntervalSeconds !== undefined) {
      configFile = join(dataDir, 'broker.yaml');
      writeFileSync(configFile, JSON.stringify({ reconcileIntervalSeconds: options.reconcileIntervalSeconds }), { mode: 0o600 });
    }
    const config = loadConfig({
      ...(configFile === undefined ? {} : { HSMB_CONFIG: configFile }),
      HSMB_DATA_DIR: dataDir,
      HSMB_LISTEN: '127.0.0.1:0',
      HSMB_ADMIN_LISTEN: '127.0.0.1:0',
      HSMB_LOCAL_FLEET: '3x1',
      HSMB_LOG_LEVEL: process.env['HSMB_TEST_LOG_LEVEL'] ?? 'warn',
      ...(options.faultInjection === true ? { HSMB_FAULT_INJECTION: '1' } : {}),
      ...options.env,
    });
    broker = await startBroker(config, { log: createLogger(config.logLevel) });
  } catch (error: unknown) {
    remove();
    throw error;
  }

  let disposing: Promise<void> | undefined;
  const dispose = (): Promise<void> =>
    (disposing ??= (async () => {
      try {
        await broker.stop();
      } finally {
        remove();
      }
    })());
  return {
    address: broker.address,
    dataDir,
    broker,
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}
