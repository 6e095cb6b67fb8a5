import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, defaultBackupHsmDir, loadConfig } from './broker-config.js';

function refused(env: NodeJS.ProcessEnv, pattern: RegExp): void {
  assert.throws(() => loadConfig(env, '/srv'), (error: unknown) => error instanceof ConfigError && pattern.test(error.message));
}

describe('loadConfig', () => {
  it('defaults to a safe embedded 3x1 fleet on loopback', () => {
    const config = loadConfig({}, '/srv');
    assert.equal(config.listen, '127.0.0.1:50051');
    assert.equal(config.dataDir, '/srv/.data');
    assert.deepEqual(config.fleet, { kind: 'local', zones: 3, perZone: 1, modulePath: '/usr/lib/softhsm/libsofthsm2.so' });
    assert.equal(config.localZone, 'az-a');
    assert.deepEqual(config.durability, { minAppliances: 2, minZones: 2 });
    assert.deepEqual([config.workersPerAppliance, config.sessionsPerWorker], [2, 1]);
    assert.equal(config.faultInjection, false);
    assert.equal(config.tls, undefined);
    // The backup HSM and its PINs live beside the data directory, not in it.
    assert.deepEqual(config.backupHsm, { kind: 'local', dir: '/srv/.data-backup-hsm', modulePath: '/usr/lib/softhsm/libsofthsm2.so' });
  });

  it('keeps a backup HSM an older version made inside the data directory where it is', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsmb-config-'));
    try {
      assert.equal(defaultBackupHsmDir(dataDir), `${dataDir}-backup-hsm`);
      mkdirSync(join(dataDir, 'backup-hsm'));
      assert.equal(defaultBackupHsmDir(dataDir), join(dataDir, 'backup-hsm'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('takes settings from the YAML file, and every environment variable overrides its YAML setting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-config-'));
    try {
      const file = join(dir, 'broker.yaml');
      writeFileSync(
        file,
        [
          'listen: 127.0.0.1:7001',
          'dataDir: /yaml/data',
          'localFleet: 2x2',
          'localZone: az-b',
          'softhsmModule: /yaml/softhsm.so',
          'workersPerAppliance: 3',
          'sessionsPerWorker: 4',
          'durability: { minAppliances: 3, minZones: 1 }',
          'faultInjection: true',
          'logLevel: warn',
          'insecure: false',
          'backupHsm: { dir: /yaml/backup }',
          'routing: { hedgeDelayMs: 40 }',
        ].join('\n'),
      );
      const fromFile = loadConfig({ HSMB_CONFIG: file }, '/srv');
      const pick = (config: ReturnType<typeof loadConfig>): unknown[] => [
        config.listen,
        config.dataDir,
        config.fleet,
        config.localZone,
        config.workersPerAppliance,
        config.sessionsPerWorker,
        config.durability,
        config.faultInjection,
        config.logLevel,
        config.backupHsm,
        config.routing.hedgeDelayMs,
      ];
      assert.deepEqual(pick(fromFile), [
        '127.0.0.1:7001',
        '/yaml/data',
        { kind: 'local', zones: 2, perZone: 2, modulePath: '/yaml/softhsm.so' },
        'az-b',
        3,
        4,
        { minAppliances: 3, minZones: 1 },
        true,
        'warn',
        { kind: 'local', dir: '/yaml/backup', modulePath: '/yaml/softhsm.so' },
        40,
      ]);
      const overridden = loadConfig(
        {
          HSMB_CONFIG: file,
          HSMB_LISTEN: '127.0.0.1:7002',
          HSMB_DATA_DIR: '/env/data',
          HSMB_LOCAL_FLEET: '3x1',
          HSMB_LOCAL_ZONE: 'az-c',
          HSMB_SOFTHSM_MODULE: '/env/softhsm.so',
          HSMB_WORKERS_PER_APPLIANCE: '1',
          HSMB_SESSIONS_PER_WORKER: '2',
          HSMB_MIN_REPLICAS: '2',
          HSMB_MIN_ZONES: '2',
          HSMB_FAULT_INJECTION: '0',
          HSMB_LOG_LEVEL: 'debug',
          HSMB_BACKUP_HSM_DIR: '/env/backup',
          HSMB_HEDGE_DELAY_MS: '0',
        },
        '/srv',
      );
      assert.deepEqual(pick(overridden), [
        '127.0.0.1:7002',
        '/env/data',
        { kind: 'local', zones: 3, perZone: 1, modulePath: '/env/softhsm.so' },
        'az-c',
        1,
        2,
        { minAppliances: 2, minZones: 2 },
        false,
        'debug',
        { kind: 'local', dir: '/env/backup', modulePath: '/env/softhsm.so' },
        0,
      ]);
      // Beyond loopback: HSMB_INSECURE overrides `insecure: false` (plaintext there also needs the development flag).
      assert.throws(() => loadConfig({ HSMB_CONFIG: file, HSMB_LISTEN: '0.0.0.0:7003', HSMB_DEVELOPMENT: '1' }, '/srv'), /serving beyond loopback needs mutual TLS/);
      assert.equal(loadConfig({ HSMB_CONFIG: file, HSMB_LISTEN: '0.0.0.0:7003', HSMB_INSECURE: '1', HSMB_DEVELOPMENT: '1' }, '/srv').listen, '0.0.0.0:7003');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('defaults the breaker to 5 consecutive faults, or more than 50 % of at least 20 calls in 10 s', () => {
    const { routing } = loadConfig({}, '/srv');
    assert.deepEqual(
      [routing.consecutiveFailures, routing.errorThresholdPercentage, routing.volumeThreshold, routing.rollingWindowMs, routing.openMs, routing.maxOpenMs],
      [5, 50, 20, 10_000, 1000, 30_000],
    );
  });

  it('names the field, the value and the allowed range of a bad setting', () => {
    refused({ HSMB_LOCAL_FLEET: '3by1' }, /^localFleet \(HSMB_LOCAL_FLEET\): "3by1" is not valid; expected ZONESxPER_ZONE/);
    refused({ HSMB_LOCAL_FLEET: '27x1' }, /zones must be 1 to 26/);
    refused({ HSMB_LISTEN: 'nowhere' }, /^listen \(HSMB_LISTEN\): "nowhere"/);
    refused({ HSMB_WORKERS_PER_APPLIANCE: '0' }, /workersPerAppliance.*"0".*from 1 to 64/);
    refused({ HSMB_SESSIONS_PER_WORKER: '65' }, /sessionsPerWorker \(HSMB_SESSIONS_PER_WORKER\).*"65".*from 1 to 64/);
    refused({ HSMB_MIN_ZONES: 'two' }, /durability.minZones/);
    refused({ HSMB_FAULT_INJECTION: 'maybe' }, /faultInjection/);
  });

  it('serves beyond loopback only with mutual TLS and a policy, or plaintext with both insecure and development set', () => {
    refused({ HSMB_LISTEN: '0.0.0.0:50051' }, /needs mutual TLS/);
    refused({ HSMB_LISTEN: '0.0.0.0:50051', HSMB_INSECURE: '1' }, /^insecure \(HSMB_INSECURE\).*development: true/);
    assert.equal(loadConfig({ HSMB_LISTEN: '0.0.0.0:50051', HSMB_INSECURE: '1', HSMB_DEVELOPMENT: '1' }, '/srv').listen, '0.0.0.0:50051');
    const tlsFiles = { HSMB_SERVER_TLS_CERT: '/c.pem', HSMB_SERVER_TLS_KEY: '/k.pem' };
    refused({ HSMB_LISTEN: '0.0.0.0:50051', ...tlsFiles }, /^tls.clientCa.*mutual TLS only/);
    refused({ HSMB_LISTEN: '0.0.0.0:50051', ...tlsFiles, HSMB_SERVER_TLS_CLIENT_CA: '/ca.pem' }, /^access.policyFile \(HSMB_POLICY\).*needs an access policy/);
    const config = loadConfig({ HSMB_LISTEN: '0.0.0.0:50051', ...tlsFiles, HSMB_SERVER_TLS_CLIENT_CA: '/ca.pem', HSMB_POLICY: 'policy.yaml' }, '/srv');
    assert.deepEqual(config.tls, { certFile: '/c.pem', keyFile: '/k.pem', clientCaFile: '/ca.pem' });
    assert.deepEqual(config.access, { policyFile: '/srv/policy.yaml' });
    refused({ HSMB_SERVER_TLS_CERT: '/c.pem' }, /tls.key/);
  });

  it('runs without a policy only in loopback development mode', () => {
    const config = loadConfig({}, '/srv');
    assert.equal(config.tls, undefined);
    assert.equal(config.access.policyFile, undefined);
    assert.equal(config.development, false);
  });

  it('reads appliances from a YAML file by module and RFC 7512 URI, never a PIN value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-config-'));
    try {
      const file = join(dir, 'broker.yaml');
      writeFileSync(
        file,
        [
          'localZone: eu-west-1b',
          'appliances:',
          '  - id: luna-1',
          '    zone: eu-west-1a',
          '    module: /usr/safenet/lunaclient/lib/libCryptoki2_64.so',
          '    uri: "pkcs11:token=partition-1;serial=1234"',
          '    pin: file:/run/secrets/luna-1.pin',
          '    soPin: {env: LUNA1_SO_PIN}',
          '    workers: 4',
          '    sessions: 8',
          '  - id: luna-2',
          '    zone: eu-west-1b',
          '    uri: "pkcs11:token=partition-2?module-path=/opt/x.so&pin-source=file:/run/p2"',
          'routing:',
          '  zonePriority: [eu-west-1a]',
          '  hedgeDelayMs: 25',
        ].join('\n'),
      );
      const config = loadConfig({ HSMB_CONFIG: file }, '/srv');
      assert.equal(config.localZone, 'eu-west-1b');
      assert.equal(config.fleet.kind, 'configured');
      if (config.fleet.kind !== 'configured') return;
      const [first, second] = config.fleet.appliances;
      assert.deepEqual(first?.selector, { token: 'partition-1', serial: '1234' });
      assert.deepEqual(first?.pin, { file: '/run/secrets/luna-1.pin' });
      assert.deepEqual(first?.soPin, { env: 'LUNA1_SO_PIN' });
      assert.equal(first?.workers, 4);
      assert.equal(first?.sessions, 8);
      assert.equal(second?.sessions, 1, 'one session per worker unless set');
      assert.equal(second?.modulePath, '/opt/x.so');
      assert.deepEqual(second?.pin, { file: '/run/p2' });
      assert.deepEqual(config.routing.zonePriority, ['eu-west-1a']);
      assert.equal(config.routing.hedgeDelayMs, 25);

      writeFileSync(file, 'appliances:\n  - id: a\n    zone: z\n    module: /m.so\n    uri: "pkcs11:token=t"\n    pin: "1234"\n');
      refused({ HSMB_CONFIG: file }, /appliances\[0\]\.pin: "<redacted>" is not valid.*PINs themselves never go in the configuration/);
      writeFileSync(file, 'colour: blue\n');
      refused({ HSMB_CONFIG: file }, /^colour: "blue" is not valid; unknown setting/);
      writeFileSync(file, 'appliances:\n  - id: a\n    zone: z\n    module: /m.so\n    uri: "pkcs11:token=t?pin-value=1234"\n    pin: file:/p\n');
      refused({ HSMB_CONFIG: file }, /must not carry pin-value/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
