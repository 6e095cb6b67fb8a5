#!/usr/bin/env node
import { join } from 'node:path';
import { redactStoreUrl } from '@hsm-broker/keys';
import { startBroker } from './broker.js';
import { ConfigError, loadConfig } from './broker-config.js';
import { createLogger } from './logger.js';

// The broker's entry point: configuration is read and checked once, here;
// an invalid value stops the process with a message naming it.

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error: unknown) {
    if (error instanceof ConfigError) {
      process.stderr.write(`hsm-broker: configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const broker = await startBroker(config, { log });
  const fleet = broker.fleet.snapshot();
  log.info('hsm-broker serving', {
    address: broker.address,
    dataDir: config.dataDir,
    metadataStore: config.store.kind === 'postgres' ? redactStoreUrl(config.store.url) : join(config.dataDir, 'broker.db'),
    auditFile: config.audit.file,
    backupHsm: config.backupHsm?.kind === 'local' ? config.backupHsm.dir : config.backupHsm ? 'configured' : 'none',
    fleet: config.fleet.kind === 'local' ? `embedded SoftHSM ${String(config.fleet.zones)}x${String(config.fleet.perZone)}` : `configured, ${String(config.fleet.appliances.length)} appliances`,
    localZone: config.localZone,
    appliances: fleet.appliances.map((appliance) => `${appliance.id}@${appliance.zone}:${appliance.health}`),
    tracing: config.tracing.tracesUrl ?? 'off',
    dashboard: broker.adminAddress ? `http://${broker.adminAddress}/` : 'off',
    kmsEndpoint: broker.kms?.url ?? 'off',
    try: `npx hsmctl --address ${broker.address}${config.tls ? ' --tls-ca CA.pem --tls-cert CERT.pem --tls-key KEY.pem' : ''} fleet status`,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    broker.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('stop failed', { error: error instanceof Error ? error.message : String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`hsm-broker: ${error instanceof ConfigError ? 'configuration error: ' : ''}${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
