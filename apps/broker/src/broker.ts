import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { Fleet } from '@hsm-broker/fleet';
import type { ApplianceConfig, CloneEndpoint } from '@hsm-broker/fleet';
import { BackupHsm, KeyBackup, KeyRegistry, ReplicaReconciler, SqliteKeyStore, enrollFleetKek } from '@hsm-broker/keys';
import { BackupServiceService, CryptoServiceService, FleetServiceService, KeyServiceService } from '@hsm-broker/proto';
import { backupService } from './backup-service.js';
import type { BrokerConfig, ConfiguredAppliance, PinSource } from './broker-config.js';
import { ConfigError } from './broker-config.js';
import { openPipeline } from './call-pipeline.js';
import { cryptoService } from './crypto-service.js';
import { fleetService } from './fleet-service.js';
import { keyService } from './key-service.js';
import { provisionLocalBackupHsm, provisionLocalFleet } from './local-fleet.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';

/** A running broker. */
export interface RunningBroker {
  /** host:port actually bound (the port is real even when 0 was asked for). */
  address: string;
  port: number;
  fleet: Fleet;
  registry: KeyRegistry;
  reconciler: ReplicaReconciler;
  /** Runs the deletion sweep now (normally periodic). */
  sweepDeletions(): Promise<string[]>;
  /** Runs the automatic-rotation sweep now (normally periodic). */
  sweepRotations(): Promise<string[]>;
  /** Stops serving, then stops the workers and closes the database. */
  stop(): Promise<void>;
}

/** Things tests and embedders may replace. */
export interface BrokerOverrides {
  log?: Logger;
  /** Clock for key lifecycle (deletion windows). */
  clock?: () => number;
}

const protoRoot = fileURLToPath(new URL('../../../proto', import.meta.url));
const serviceNames = ['hsmbroker.v1.CryptoService', 'hsmbroker.v1.KeyService', 'hsmbroker.v1.FleetService', 'hsmbroker.v1.BackupService'];

function readPin(source: PinSource, field: string): string {
  if ('env' in source) {
    const value = process.env[source.env];
    if (!value) throw new ConfigError(`${field}: environment variable ${source.env} is not set`);
    return value;
  }
  try {
    return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
  } catch (error: unknown) {
    throw new ConfigError(`${field}: cannot read PIN file ${source.file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function appliancesOf(config: BrokerConfig, log: Logger): Promise<ApplianceConfig[]> {
  if (config.fleet.kind === 'local') {
    return provisionLocalFleet(
      {
        dataDir: config.dataDir,
        zones: config.fleet.zones,
        perZone: config.fleet.perZone,
        modulePath: config.fleet.modulePath,
        workersPerAppliance: config.workersPerAppliance,
        startTimeoutMs: config.timeouts.startMs,
      },
      log,
    );
  }
  const cloneTls = config.cloneTls
    ? { ca: readTlsFile(config.cloneTls.caFile, 'cloneTls.ca'), cert: readTlsFile(config.cloneTls.certFile, 'cloneTls.cert'), key: readTlsFile(config.cloneTls.keyFile, 'cloneTls.key') }
    : undefined;
  return config.fleet.appliances.map((appliance) => resolveAppliance(appliance, `appliances.${appliance.id}`, cloneTls));
}

function resolveAppliance(appliance: ConfiguredAppliance, field: string, cloneTls?: Omit<CloneEndpoint, 'url'>): ApplianceConfig {
  return {
    ...(appliance.clone && cloneTls ? { clone: { url: appliance.clone, ...cloneTls } } : {}),
    id: appliance.id,
    zone: appliance.zone,
    modulePath: appliance.modulePath,
    selector: appliance.selector,
    userPin: readPin(appliance.pin, `${field}.pin`),
    ...(appliance.soPin ? { soPin: readPin(appliance.soPin, `${field}.soPin`) } : {}),
    env: appliance.env,
    workers: appliance.workers,
  };
}

async function backupHsmOf(config: BrokerConfig, log: Logger): Promise<BackupHsm | undefined> {
  const backup = config.backupHsm;
  if (!backup) return undefined;
  const appliance =
    backup.kind === 'local'
      ? await provisionLocalBackupHsm(backup.dir, backup.modulePath, config.timeouts.startMs, log)
      : resolveAppliance(backup.appliance, 'backupHsm');
  return new BackupHsm(appliance, config.timeouts.slowCallMs);
}

function readTlsFile(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error: unknown) {
    throw new ConfigError(`${field}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** TLS (mutual when a client CA is configured) or, on loopback only, plaintext. */
function serverCredentials(config: BrokerConfig): ServerCredentials {
  if (!config.tls) return ServerCredentials.createInsecure();
  const clientCa = config.tls.clientCaFile === undefined ? null : readTlsFile(config.tls.clientCaFile, 'tls.clientCa');
  return ServerCredentials.createSsl(
    clientCa,
    [{ cert_chain: readTlsFile(config.tls.certFile, 'tls.cert'), private_key: readTlsFile(config.tls.keyFile, 'tls.key') }],
    clientCa !== null,
  );
}

/** Starts the fleet, the registry and the gRPC server. */
export async function startBroker(config: BrokerConfig, overrides: BrokerOverrides = {}): Promise<RunningBroker> {
  const log = overrides.log ?? createLogger(config.logLevel);
  // Read before anything starts, so a bad certificate path stops the broker at once.
  const credentials = serverCredentials(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const appliances = await appliancesOf(config, log);
  const { routing } = config;
  const fleet = new Fleet({
    localZone: config.localZone,
    appliances,
    timeouts: config.timeouts,
    routing: {
      zonePriority: routing.zonePriority,
      preferLocalZone: routing.preferLocalZone,
      breaker: {
        consecutiveFailures: routing.consecutiveFailures,
        errorThresholdPercentage: routing.errorThresholdPercentage,
        volumeThreshold: routing.volumeThreshold,
        rollingWindowMs: routing.rollingWindowMs,
        openMs: routing.openMs,
        maxOpenMs: routing.maxOpenMs,
      },
      retryBudget: { ratio: routing.retryBudgetRatio, minPerSecond: routing.retryBudgetMinPerSecond, windowMs: 10_000 },
      maxAttempts: routing.maxAttempts,
      hedgeDelayMs: routing.hedgeDelayMs,
      slowStartMs: routing.slowStartMs,
      healthIntervalMs: routing.healthIntervalMs,
      probeTimeoutMs: routing.probeTimeoutMs,
      faultInjection: config.faultInjection,
    },
  });
  for (const appliance of fleet.appliances) {
    appliance.breaker.onStateChange((state) => log.warn('appliance breaker changed state', { appliance: appliance.id, zone: appliance.zone, state }));
  }
  await fleet.start();
  for (const appliance of fleet.appliances) {
    log.info('appliance started', { appliance: appliance.id, zone: appliance.zone, health: appliance.health, workers: appliance.workerCount });
  }
  const store = new SqliteKeyStore(join(config.dataDir, 'broker.db'));
  const enrolled = new Set<string>();
  try {
    const enrollment = await enrollFleetKek(fleet, store);
    for (const id of enrollment.enrolled) enrolled.add(id);
    for (const failure of enrollment.failed) log.warn('appliance not enrolled in the fleet KEK', { appliance: failure.applianceId, error: failure.error });
    log.info('fleet KEK ready', { kekId: enrollment.kekId, enrolled: enrollment.enrolled });
  } catch (error: unknown) {
    await fleet.stop();
    store.close();
    throw error;
  }

  const registry = new KeyRegistry({
    fleet,
    store,
    durability: config.durability,
    enrolled: () => enrolled,
    ...(overrides.clock ? { clock: overrides.clock } : {}),
    log: (level, message, fields) => log[level](message, fields),
  });
  const reconciler = new ReplicaReconciler({
    fleet,
    store,
    registry,
    enrolled,
    log: (level, message, fields) => log[level](message, fields),
    ...(overrides.clock ? { clock: overrides.clock } : {}),
  });
  fleet.onRecovery((applianceId) => void reconciler.reconcile([applianceId]));
  fleet.onTokenReplaced((applianceId) => reconciler.tokenReplaced(applianceId));
  fleet.onKeyMissing((applianceId, label) => reconciler.replicaMissing(applianceId, label));
  const reconcileNow = (): void => {
    reconciler.reconcile().catch((error: unknown) => log.error('reconciliation failed', { error: error instanceof Error ? error.message : String(error) }));
  };
  reconcileNow();
  const reconcileTimer = setInterval(reconcileNow, config.reconcileIntervalMs);
  reconcileTimer.unref();
  const effective = registry.effectiveDurability;
  if (effective.minAppliances < config.durability.minAppliances || effective.minZones < config.durability.minZones) {
    log.warn('the fleet is smaller than the durability policy; keys are less durable than configured', {
      policy: config.durability,
      effective,
    });
  }

  const backupHsm = await backupHsmOf(config, log);
  const backup = backupHsm
    ? new KeyBackup({
        fleet,
        store,
        registry,
        backupHsm,
        enrolled,
        log: (level, message, fields) => log[level](message, fields),
        ...(overrides.clock ? { clock: overrides.clock } : {}),
      })
    : undefined;

  // Restores carry a whole backup file in one message; every other request
  // is bounded far lower by its own field checks.
  const server = new Server({ 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
  const pipeline = openPipeline(log);
  server.addService(CryptoServiceService, cryptoService(registry, pipeline));
  server.addService(KeyServiceService, keyService(registry, fleet, enrolled, pipeline));
  server.addService(FleetServiceService, fleetService(fleet, registry, reconciler, enrolled, pipeline));
  server.addService(BackupServiceService, backupService(backup, pipeline));
  if (config.faultInjection) log.warn('fault injection is enabled: InjectFault can make appliances fail on purpose');
  const health = new HealthImplementation(Object.fromEntries(['', ...serviceNames].map((name) => [name, 'NOT_SERVING' as const])));
  health.addToServer(server);
  const definitions = loadSync(['hsmbroker/v1/crypto_service.proto', 'hsmbroker/v1/key_service.proto', 'hsmbroker/v1/fleet_service.proto', 'hsmbroker/v1/backup_service.proto'], {
    includeDirs: [protoRoot],
  });
  new ReflectionService(definitions).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(config.listen, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  for (const name of ['', ...serviceNames]) health.setStatus(name, 'SERVING');

  const sweep = (): Promise<string[]> =>
    registry.destroyDueKeys().catch((error: unknown) => {
      log.error('deletion sweep failed', { error: error instanceof Error ? error.message : String(error) });
      return [];
    });
  const rotate = (): Promise<string[]> =>
    registry.rotateDueKeys().catch((error: unknown) => {
      log.error('rotation sweep failed', { error: error instanceof Error ? error.message : String(error) });
      return [];
    });
  const sweeper = setInterval(() => {
    void sweep().then(rotate);
  }, config.deletionSweepMs);
  sweeper.unref();

  let stopping: Promise<void> | undefined;
  return {
    address: `${host}:${String(port)}`,
    port,
    fleet,
    registry,
    reconciler,
    sweepDeletions: sweep,
    sweepRotations: rotate,
    stop() {
      stopping ??= (async () => {
        clearInterval(sweeper);
        clearInterval(reconcileTimer);
        for (const name of ['', ...serviceNames]) health.setStatus(name, 'NOT_SERVING');
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 5000);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        await reconciler.reconcile([]).catch(() => undefined);
        await fleet.stop();
        store.close();
      })();
      return stopping;
    },
  };
}
