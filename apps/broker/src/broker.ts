import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { Fleet } from '@hsm-broker/fleet';
import type { ApplianceConfig, CloneEndpoint } from '@hsm-broker/fleet';
import { BackupHsm, KeyBackup, KeyRegistry, RegistryRebuild, ReplicaReconciler, enrollFleetKek } from '@hsm-broker/keys';
import type { BackgroundLeadership, KeyStore, SweepReport } from '@hsm-broker/keys';
import { AuditServiceService, BackupServiceService, CryptoServiceService, FleetServiceService, KeyServiceService } from '@hsm-broker/proto';
import { AdminListener } from './admin-listener.js';
import { auditedPipeline } from './audit-pipeline.js';
import { auditService } from './audit-service.js';
import { AuditSigningKey } from './audit-signing-key.js';
import { AuditTrail } from './audit-trail.js';
import { auditSweep } from './audit-sweep.js';
import { backupService } from './backup-service.js';
import type { BrokerConfig, ConfiguredAppliance, PinSource } from './broker-config.js';
import { ConfigError } from './broker-config.js';
import { AccessControl } from './access/access-control.js';
import { accessPipeline } from './access/access-pipeline.js';
import { ReloadingServerCredentials } from './access/reloading-server-credentials.js';
import { openPipeline } from './call-pipeline.js';
import { cryptoService } from './crypto-service.js';
import { SignStreamStats } from './sign-stream.js';
import { fleetService } from './fleet-service.js';
import { keyService } from './key-service.js';
import { startKmsEndpoint } from './kms/kms-endpoint.js';
import type { RunningKmsEndpoint } from './kms/kms-endpoint.js';
import { provisionLocalBackupHsm, provisionLocalFleet } from './local-fleet.js';
import { ReceiveGuard } from './receive-guard.js';
import { backgroundLeadership } from './background-work.js';
import { openKeyStore } from './store-config.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';
import { StartupUndo } from './startup-undo.js';
import { startTracing } from './tracing.js';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';

/** A running broker. */
export interface RunningBroker {
  /** host:port actually bound (the port is real even when 0 was asked for). */
  address: string;
  port: number;
  fleet: Fleet;
  registry: KeyRegistry;
  reconciler: ReplicaReconciler;
  /** The access policy in force; undefined in loopback development mode. */
  access: AccessControl | undefined;
  /** The TLS credentials, which follow their files; undefined for plaintext. */
  tlsCredentials: ReloadingServerCredentials | undefined;
  /** The audit trail every call is written to. */
  audit: AuditTrail;
  /** The AWS KMS-compatible endpoint, when `kms:` configures one. */
  kms: RunningKmsEndpoint | undefined;
  /** host:port of the admin HTTP listener (metrics, health, dashboard); undefined when turned off. */
  adminAddress: string | undefined;
  /** What SignStream's flow control did (open streams, pauses). */
  signStreams: SignStreamStats;
  /** Runs the deletion sweep now (normally periodic): keys destroyed, and what is left and why. */
  sweepDeletions(): Promise<SweepReport>;
  /** Runs the automatic-rotation sweep now (normally periodic): keys rotated, and which failed. */
  sweepRotations(): Promise<SweepReport>;
  /** The key metadata store (shared by every replica when it is PostgreSQL). */
  store: KeyStore;
  /** Whether this replica runs the background work now (always, with the embedded store). */
  leadership: BackgroundLeadership;
  /** Called after every sweep, timer-driven or not, with its kind and report. Listeners must not throw. */
  onSweep(listener: (kind: 'deletion' | 'rotation', report: SweepReport) => void): void;
  /** Stops serving, then stops the workers and closes the database. */
  stop(): Promise<void>;
}

/** Things tests and embedders may replace. */
export interface BrokerOverrides {
  log?: Logger;
  /** Clock for key lifecycle (deletion windows). */
  clock?: () => number;
  /**
   * Called with the reconciler before its start-up run, so a caller can
   * watch every run ({@link ReplicaReconciler.onReconciled}) or pause it.
   */
  beforeReconcile?: (reconciler: ReplicaReconciler) => void;
  /** Also receive every span (tests, embedders); tracing is on when any is given. */
  spanProcessors?: SpanProcessor[];
}

const protoRoot = fileURLToPath(new URL('../../../proto', import.meta.url));
const serviceNames = ['hsmbroker.v1.CryptoService', 'hsmbroker.v1.KeyService', 'hsmbroker.v1.FleetService', 'hsmbroker.v1.BackupService', 'hsmbroker.v1.AuditService'];

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
        sessionsPerWorker: config.sessionsPerWorker,
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

function readTlsFile(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error: unknown) {
    throw new ConfigError(`${field}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
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
    sessionsPerWorker: appliance.sessions,
  };
}

async function backupHsmOf(config: BrokerConfig, log: Logger): Promise<BackupHsm | undefined> {
  const backup = config.backupHsm;
  if (!backup) return undefined;
  if (backup.kind === 'local' && !relative(config.dataDir, backup.dir).startsWith('..')) {
    log.warn('THE BACKUP HSM AND ITS PINS ARE INSIDE THE DATA DIRECTORY: a copy or loss of the data directory carries the fleet and its backup HSM together; set HSMB_BACKUP_HSM_DIR to a directory elsewhere and move it there', {
      backupHsmDir: backup.dir,
    });
  }
  const appliance =
    backup.kind === 'local'
      ? await provisionLocalBackupHsm(backup.dir, backup.modulePath, config.timeouts.startMs, log)
      : resolveAppliance(backup.appliance, 'backupHsm');
  return new BackupHsm(appliance, config.timeouts.slowCallMs);
}

/** Mutual TLS 1.3 that follows its files, or (loopback and development only) plaintext. */
function serverCredentials(config: BrokerConfig, log: Logger): { credentials: ServerCredentials; reloading: ReloadingServerCredentials | undefined } {
  if (!config.tls) return { credentials: ServerCredentials.createInsecure(), reloading: undefined };
  try {
    const reloading = new ReloadingServerCredentials({ certFile: config.tls.certFile, keyFile: config.tls.keyFile, clientCaFile: config.tls.clientCaFile }, log);
    return { credentials: reloading, reloading };
  } catch (error: unknown) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}

/** The access policy, or none in loopback development mode; a bad policy file stops the broker. */
function accessControlOf(config: BrokerConfig, log: Logger): AccessControl | undefined {
  if (config.access.policyFile === undefined) return undefined;
  try {
    return new AccessControl({ policyFile: config.access.policyFile, log });
  } catch (error: unknown) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}

function announceMode(config: BrokerConfig, access: AccessControl | undefined, log: Logger): void {
  if (config.tls && access) {
    log.info('serving mutual TLS 1.3; callers are named by their client certificates and the access policy decides (default deny)', {
      policyFile: config.access.policyFile,
      grants: access.policy.grants.length,
    });
    return;
  }
  if (access) {
    log.warn('PLAINTEXT ON LOOPBACK: no TLS, so every caller is "anonymous"; the access policy applies to that name. Configure tls.cert, tls.key and tls.clientCa for production', {
      listen: config.listen,
      policyFile: config.access.policyFile,
    });
    return;
  }
  log.warn('DEVELOPMENT MODE: plaintext with no access policy; every caller that reaches the port may do everything. Configure tls and access.policyFile for production', {
    listen: config.listen,
  });
}

/** Starts the fleet, the registry and the gRPC server. */
export async function startBroker(config: BrokerConfig, overrides: BrokerOverrides = {}): Promise<RunningBroker> {
  const log = overrides.log ?? createLogger(config.logLevel);
  // Read before anything starts, so a bad certificate or policy stops the broker at once.
  const { credentials, reloading } = serverCredentials(config, log);
  const access = accessControlOf(config, log);
  const undo = new StartupUndo(log);
  undo.add(() => access?.close());
  undo.add(() => reloading?.close());
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const appliances = await undo.guard(() => appliancesOf(config, log));
  const { routing } = config;
  const tracing = startTracing(config.tracing, overrides.spanProcessors);
  undo.add(() => tracing.shutdown().catch(() => undefined));
  const fleet = new Fleet({
    ...(tracing.tracer ? { tracer: tracing.tracer } : {}),
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
  // A fleet that failed half-way has started some workers: stopping it ends them.
  undo.add(() => fleet.stop());
  await undo.guard(() => fleet.start());
  for (const appliance of fleet.appliances) {
    log.info('appliance started', { appliance: appliance.id, zone: appliance.zone, health: appliance.health, workers: appliance.workerCount });
  }
  const store = await undo.guard(() => openKeyStore(config.store, config.dataDir, log));
  undo.add(() => store.close());
  const enrolled = new Set<string>();
  const enrollment = await undo.guard(() => enrollFleetKek(fleet, store));
  for (const id of enrollment.enrolled) enrolled.add(id);
  for (const failure of enrollment.failed) log.warn('appliance not enrolled in the fleet KEK', { appliance: failure.applianceId, error: failure.error });
  log.info('fleet KEK ready', { kekId: enrollment.kekId, enrolled: enrollment.enrolled });

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
  // Background work runs on the leader only (every replica, with the embedded store, is its own leader).
  const leadership = backgroundLeadership(store, config.listen, log);
  undo.add(() => leadership.stop());
  const leading = (work: () => void) => () => {
    if (leadership.isLeader) work();
  };
  fleet.onRecovery((applianceId) => leading(() => reconciler.runInBackground('recovery', [applianceId]))());
  fleet.onTokenReplaced((applianceId) => leading(() => reconciler.tokenReplaced(applianceId))());
  fleet.onKeyMissing((applianceId, label) => leading(() => reconciler.replicaMissing(applianceId, label))());
  // Before the first reconciliation and the first call, so metrics see every one.
  const admin = new AdminListener({ fleet, registry, store, reconciler });
  undo.add(() => admin.close());
  overrides.beforeReconcile?.(reconciler);
  leading(() => reconciler.runInBackground('start-up'))();
  // A replica that becomes leader repairs at once instead of waiting for the next interval.
  leadership.onChange((leader) => leader && reconciler.runInBackground('start-up'));
  const reconcileTimer = setInterval(leading(() => reconciler.runInBackground('interval')), config.reconcileIntervalMs);
  reconcileTimer.unref();
  undo.add(() => clearInterval(reconcileTimer));
  const effective = registry.effectiveDurability;
  if (effective.minAppliances < config.durability.minAppliances || effective.minZones < config.durability.minZones) {
    log.warn('the fleet is smaller than the durability policy; keys are less durable than configured', {
      policy: config.durability,
      effective,
    });
  }

  // An unreadable backup HSM PIN stops the broker; nothing it started may stay behind.
  const backupHsm = await undo.guard(() => backupHsmOf(config, log));
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

  // Every request is bounded by its method's limits before anything decodes it (request-limits.ts).
  const guard = new ReceiveGuard(config.limits);
  const server = new Server(guard.serverOptions());
  undo.add(() => server.forceShutdown());
  const audit = new AuditTrail({
    settings: config.audit,
    log,
    openSigner: () => AuditSigningKey.open(fleet, enrolled, join(config.dataDir, 'audit-signing-key.json'), log),
  });
  // The last checkpoint is signed while the fleet still runs: undone before it.
  undo.add(() => audit.close());
  const fingerprint = await audit.openSigner().catch((error: unknown) => {
    log.warn('audit signing key not ready; checkpoints wait for it', { error: error instanceof Error ? error.message : String(error) });
    return undefined;
  });
  log.info('audit trail ready', { file: config.audit.file, signingKeyFingerprint: fingerprint, collectors: config.audit.syslog.map((collector) => collector.address) });
  const pipeline = { ...guard.pipeline(admin.pipeline(auditedPipeline(access ? accessPipeline(log, access) : openPipeline(log), audit))), ...(tracing.tracer ? { tracer: tracing.tracer } : {}) };
  const signStreams = new SignStreamStats();
  server.addService(guard.service(CryptoServiceService), cryptoService(registry, pipeline, signStreams));
  const rebuild = new RegistryRebuild({ fleet, store, log: (level, message, fields) => log[level](message, fields), ...(overrides.clock ? { clock: overrides.clock } : {}) });
  server.addService(guard.service(KeyServiceService), keyService(registry, fleet, enrolled, pipeline, rebuild));
  server.addService(guard.service(FleetServiceService), fleetService(fleet, registry, reconciler, enrolled, pipeline, (id) => admin.activity.traffic(id).p99Ms));
  server.addService(guard.service(BackupServiceService), backupService(backup, pipeline));
  server.addService(guard.service(AuditServiceService), auditService(audit, pipeline));
  if (config.faultInjection) log.warn('fault injection is enabled: InjectFault can make appliances fail on purpose');
  const health = new HealthImplementation(Object.fromEntries(['', ...serviceNames].map((name) => [name, 'NOT_SERVING' as const])));
  health.addToServer(server);
  const definitions = loadSync(['hsmbroker/v1/crypto_service.proto', 'hsmbroker/v1/key_service.proto', 'hsmbroker/v1/fleet_service.proto', 'hsmbroker/v1/backup_service.proto', 'hsmbroker/v1/audit_service.proto'], {
    includeDirs: [protoRoot],
  });
  new ReflectionService(definitions).addToServer(server);

  const port = await undo.guard(
    () =>
      new Promise<number>((resolve, reject) => {
        server.bindAsync(config.listen, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
      }),
  );
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  const adminServer = await undo.guard(() =>
    admin.listen(config.admin.listen, log).catch((error: unknown) => {
      throw new ConfigError(error instanceof Error ? error.message : String(error));
    }),
  );
  announceMode(config, access, log);
  access?.watch(config.reloadIntervalMs);
  reloading?.watch(config.reloadIntervalMs);
  // A KMS endpoint that cannot start (unreadable secret, port taken) stops the whole broker cleanly.
  const kmsSettings = config.kms;
  const kms = kmsSettings
    ? await undo.guard(() =>
        startKmsEndpoint({ settings: kmsSettings, tls: config.tls, registry, store, fleet, enrolled, rebuild, pipeline, databaseFile: join(config.dataDir, 'broker.db'), audit, log, ...(overrides.clock ? { clock: overrides.clock } : {}) }),
      )
    : undefined;
  for (const name of ['', ...serviceNames]) health.setStatus(name, 'SERVING');

  const sweepListeners: ((kind: 'deletion' | 'rotation', report: SweepReport) => void)[] = [(kind, report) => admin.sweepFinished(kind, report)];
  /** Runs one sweep; a sweep that throws is reported as a failure, never as "nothing to do". */
  const sweepOf = (kind: 'deletion' | 'rotation', run: () => Promise<SweepReport>) => async (): Promise<SweepReport> => {
    const report = await run().catch((error: unknown): SweepReport => {
      const message = error instanceof Error ? error.message : String(error);
      log.error(`${kind} sweep failed`, { error: message });
      return { done: [], failures: [`${kind} sweep failed: ${message}`] };
    });
    auditSweep(audit, registry, kind, report);
    for (const listener of sweepListeners) listener(kind, report);
    return report;
  };
  const sweep = sweepOf('deletion', () => registry.destroyDueKeys());
  const rotate = sweepOf('rotation', () => registry.rotateDueKeys());
  const sweeper = setInterval(
    leading(() => void sweep().then(rotate)),
    config.deletionSweepMs,
  );
  sweeper.unref();

  let stopping: Promise<void> | undefined;
  return {
    address: `${host}:${String(port)}`,
    port,
    fleet,
    registry,
    reconciler,
    access,
    tlsCredentials: reloading,
    audit,
    kms,
    adminAddress: adminServer?.address,
    signStreams,
    sweepDeletions: sweep,
    sweepRotations: rotate,
    store,
    leadership,
    onSweep(listener) {
      sweepListeners.push(listener);
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(sweeper);
        clearInterval(reconcileTimer);
        // Before anything closes: a leadership change now must not start work on a broker going away.
        leadership.stop();
        access?.close();
        reloading?.close();
        for (const name of ['', ...serviceNames]) health.setStatus(name, 'NOT_SERVING');
        await kms?.close();
        await admin.close();
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
        // The last checkpoint is signed while the fleet still runs.
        await audit.close();
        await fleet.stop();
        store.close();
        await tracing.shutdown().catch((error: unknown) => log.warn('trace export at shutdown failed', { error: error instanceof Error ? error.message : String(error) }));
      })();
      return stopping;
    },
  };
}
