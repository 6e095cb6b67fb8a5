import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, Client, ServiceError } from '@grpc/grpc-js';
import { CryptoServiceClient, FleetServiceClient, KeyServiceClient } from '@hsm-broker/proto';
import { startBroker } from '../broker.js';
import type { BrokerOverrides, RunningBroker } from '../broker.js';
import { defaultBackupHsmDir, loadConfig } from '../broker-config.js';
import { createLogger, teeLogger } from '../logger.js';
import { openLogCapture, recordSecretFields } from './log-capture.js';
import type { LogCapture } from './log-capture.js';
import type { Logger } from '../logger.js';

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
type UnaryMethods<C> = {
  [K in keyof C]: C[K] extends (request: infer Req, metadata: never, options: never, callback: Callback<infer Res>) => unknown ? (request: Req) => Promise<Res> : never;
};

/** Promise wrappers over the generated grpc-js clients, with a per-call deadline. */
function promisify<C extends Client>(client: C, deadlineMs: number, observe: (payload: unknown) => void): UnaryMethods<C> {
  return new Proxy({} as UnaryMethods<C>, {
    get(_target, name: string) {
      return (request: unknown) =>
        new Promise((resolve, reject) => {
          const method = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
          if (typeof method !== 'function') {
            reject(new Error(`no method ${name}`));
            return;
          }
          observe(request);
          method.call(client, request, { deadline: Date.now() + deadlineMs }, (error: ServiceError | null, response: unknown) => {
            if (error) {
              reject(error);
              return;
            }
            observe(response);
            resolve(response);
          });
        });
    },
  });
}

/** Generated clients connected to a broker. */
export interface TestClients {
  crypto: UnaryMethods<InstanceType<typeof CryptoServiceClient>>;
  keys: UnaryMethods<InstanceType<typeof KeyServiceClient>>;
  fleet: UnaryMethods<InstanceType<typeof FleetServiceClient>>;
  close(): void;
}

/**
 * Connects the generated clients to `address` (plaintext unless `creds` says
 * otherwise). `observe` sees every request and response (the log-leak scan
 * records their plaintexts).
 */
export function connect(address: string, deadlineMs = 60_000, creds: ChannelCredentials = credentials.createInsecure(), observe: (payload: unknown) => void = () => undefined): TestClients {
  const crypto = new CryptoServiceClient(address, creds);
  const keys = new KeyServiceClient(address, creds);
  const fleet = new FleetServiceClient(address, creds);
  return {
    crypto: promisify(crypto, deadlineMs, observe),
    keys: promisify(keys, deadlineMs, observe),
    fleet: promisify(fleet, deadlineMs, observe),
    close() {
      crypto.close();
      keys.close();
      fleet.close();
    },
  };
}

/** Options for {@link startTestBroker}. */
export interface TestBrokerOptions {
  /** Extra HSMB_* settings. */
  env?: Record<string, string>;
  clock?: () => number;
  /** Reuse a data directory (restart tests). */
  dataDir?: string;
  /** Settings for a YAML configuration file (routing, timeouts, …). */
  config?: Record<string, unknown>;
  /** Receives every log line the broker writes (at HSMB_LOG_LEVEL, or `env`'s), instead of stderr. */
  logSink?: (line: string) => void;
  /** Where the broker logs (default: stderr at HSMB_TEST_LOG_LEVEL, or error). */
  log?: Logger;
  /** Passed to the broker: see BrokerOverrides.beforeReconcile. */
  beforeReconcile?: BrokerOverrides['beforeReconcile'];
  /** Passed to the broker: see BrokerOverrides.spanProcessors. */
  spanProcessors?: BrokerOverrides['spanProcessors'];
}

/** A broker on a fresh local SoftHSM fleet in a temporary directory. */
export interface TestBroker {
  broker: RunningBroker;
  clients: TestClients;
  dataDir: string;
  /** The full log of this broker and the secrets it was given, scanned for leaks after the suites. */
  logCapture: LogCapture;
  /** Stops the broker (keeping the data directory). */
  stop(): Promise<void>;
  /** Stops the broker and removes its data. */
  dispose(): Promise<void>;
}

/**
 * Starts a real broker on a real SoftHSM fleet, listening on a free
 * loopback port.
 * @internal
 */
export async function startTestBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'hsmb-it-'));
  const configFile: Record<string, string> = {};
  if (options.config) {
    configFile['HSMB_CONFIG'] = join(dataDir, 'broker.yaml');
    writeFileSync(configFile['HSMB_CONFIG'], JSON.stringify(options.config));
  }
  const config = loadConfig({
    ...configFile,
    HSMB_DATA_DIR: dataDir,
    HSMB_LISTEN: '127.0.0.1:0',
    HSMB_ADMIN_LISTEN: '127.0.0.1:0',
    HSMB_LOG_LEVEL: process.env['HSMB_TEST_LOG_LEVEL'] ?? 'error',
    ...options.env,
  });
  // Every broker's log is also kept in full, with the secrets it was given, for the leak scan.
  const capture = openLogCapture(basename(process.argv[1] ?? 'broker', '.js'));
  capture.addPinsOf(config);
  const shown = options.log ?? (options.logSink ? createLogger(config.logLevel, options.logSink) : createLogger(config.logLevel));
  const broker = await startBroker(config, {
    log: teeLogger(shown, capture.log),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.beforeReconcile ? { beforeReconcile: options.beforeReconcile } : {}),
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
  });
  // PIN files of an embedded fleet exist once it has started.
  capture.addPinsOf(config);
  const clients = connect(broker.address, 60_000, credentials.createInsecure(), (payload) => recordSecretFields(capture, payload));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    clients.close();
    await broker.stop();
  };
  return {
    broker,
    clients,
    dataDir,
    logCapture: capture,
    stop,
    async dispose() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
      // The embedded backup HSM lives beside the data directory (see defaultBackupHsmDir).
      rmSync(defaultBackupHsmDir(dataDir), { recursive: true, force: true });
    },
  };
}

/** The gRPC status code of a rejection (or undefined when it was not a gRPC error). */
export async function statusOf(promise: Promise<unknown>): Promise<{ code: number | undefined; message: string; metadata: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error: unknown) {
    const failure = error as Partial<ServiceError>;
    return { code: failure.code, message: failure.details ?? failure.message ?? '', metadata: failure.metadata?.getMap() ?? {} };
  }
  throw new Error('expected the call to fail, but it succeeded');
}
