import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { BackupServiceClient, FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { defaultBackupHsmDir } from './broker-config.js';
import { initializeLocalToken } from './local-fleet.js';
import { createLogger } from './logger.js';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { sampleWorkerProcesses } from './testing/worker-processes.js';
import type { WorkerProcessView } from './testing/worker-processes.js';

const softhsm = '/usr/lib/softhsm/libsofthsm2.so';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything a broker wrote to its log, at debug level. */
function capturedLog(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger('debug', (line) => lines.push(line)) };
}

/** Work that starts and restarts every kind of worker: crypto, security officer, backup HSM. */
async function exercise(t: TestBroker, crash: string): Promise<void> {
  await t.clients.keys.createKey({ keyId: 'pin/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
  await t.clients.crypto.sign({ keyId: 'pin/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
  const restarts = t.broker.fleet.appliance(crash).stats.workerRestartsTotal;
  await t.clients.fleet.injectFault({ applianceId: crash, kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
  await t.clients.fleet.clearFaults({ applianceId: crash });
  const deadline = Date.now() + 30_000;
  while (t.broker.fleet.appliance(crash).stats.workerRestartsTotal === restarts || t.broker.fleet.appliance(crash).workerCount === 0) {
    if (Date.now() > deadline) throw new Error(`${crash} did not restart its workers`);
    await sleep(25);
  }
  const backup = new BackupServiceClient(t.broker.address, credentials.createInsecure());
  await new Promise<void>((resolve, reject) => {
    const stream = backup.createBackup({});
    stream.on('data', () => undefined);
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  backup.close();
}

function assertNoPin(where: string, text: string, pins: readonly string[]): void {
  for (const pin of pins) assert.ok(!text.includes(pin), `a PIN appears in ${where}`);
}

function checkWorkers(workers: Iterable<WorkerProcessView>, pins: readonly string[]): number {
  let count = 0;
  for (const worker of workers) {
    count++;
    assertNoPin(`the argv of worker ${String(worker.pid)}`, worker.argv.join(' '), pins);
    assertNoPin(`the environment of worker ${String(worker.pid)}`, Object.entries(worker.env).map(([k, v]) => `${k}=${v}`).join('\n'), pins);
    const pinNames = Object.keys(worker.env).filter((name) => /PIN/i.test(name));
    assert.deepEqual(pinNames, [], `worker ${String(worker.pid)} sees PIN variables`);
  }
  return count;
}

describe('PIN hygiene', { timeout: 600_000 }, () => {
  it('embedded fleet: PIN files are owner-only; no PIN in logs, argv or any worker environment', async () => {
    const { lines, log } = capturedLog();
    const sampler = sampleWorkerProcesses();
    let t: TestBroker | undefined;
    try {
      t = await startTestBroker({ env: { HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, log });
      await exercise(t, 'hsm-b1');
      sampler.stop();
      const secretDirs = [join(t.dataDir, 'secrets'), join(defaultBackupHsmDir(t.dataDir), 'secrets')];
      const pins: string[] = [];
      for (const dir of secretDirs) {
        assert.equal(statSync(dir).mode & 0o777, 0o700, `${dir} is owner-only`);
        const files = readdirSync(dir);
        assert.ok(files.length > 0, `${dir} holds PIN files`);
        for (const name of files) {
          const stat = statSync(join(dir, name));
          assert.equal(stat.mode & 0o777, 0o600, `${name} is readable and writable by its owner only`);
          assert.equal(stat.uid, process.getuid?.(), `${name} belongs to the broker's user`);
          const parsed = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { soPin: string; userPin: string };
          pins.push(parsed.soPin, parsed.userPin);
        }
      }
      assert.equal(pins.length, 8, 'three appliances and the backup HSM, two PINs each');
      assert.ok(lines.length > 10, 'the broker logged at debug level');
      for (const line of lines) assertNoPin('a log line', line, pins);
      assertNoPin('the broker’s argv', readFileSync('/proc/self/cmdline', 'latin1'), pins);
      assert.ok(checkWorkers(sampler.seen.values(), pins) >= 5, 'crypto, officer and backup workers were all inspected');
    } finally {
      sampler.stop();
      await t?.dispose();
    }
  });

  it('configured fleet with PINs in the broker’s environment: no worker sees any of them, each sees only its own module environment', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hsmb-pins-'));
    const ids = ['hsm-x1', 'hsm-y1'];
    const pins: string[] = [];
    const names: string[] = [];
    const appliances: { id: string; zone: string; module: string; uri: string; pin: { env: string }; soPin: { env: string }; env: { SOFTHSM2_CONF: string } }[] = [];
    const { lines, log } = capturedLog();
    const sampler = sampleWorkerProcesses();
    let t: TestBroker | undefined;
    try {
      for (const [index, id] of ids.entries()) {
        const dir = join(root, id);
        mkdirSync(join(dir, 'tokens'), { recursive: true, mode: 0o700 });
        const conf = join(dir, 'softhsm2.conf');
        writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`, { mode: 0o600 });
        const userPin = randomBytes(12).toString('hex');
        const soPin = randomBytes(12).toString('hex');
        const pinName = `HSMB_TEST_${String(index)}_PIN`;
        const soPinName = `HSMB_TEST_${String(index)}_SO_PIN`;
        process.env[pinName] = userPin;
        process.env[soPinName] = soPin;
        pins.push(userPin, soPin);
        names.push(pinName, soPinName);
        await initializeLocalToken(id, softhsm, { SOFTHSM2_CONF: conf }, { userPin, soPin }, 15_000);
        appliances.push({ id, zone: `zone-${String(index)}`, module: softhsm, uri: `pkcs11:token=${id}`, pin: { env: pinName }, soPin: { env: soPinName }, env: { SOFTHSM2_CONF: conf } });
      }
      const dataDir = join(root, 'data');
      mkdirSync(dataDir, { mode: 0o700 });
      t = await startTestBroker({
        dataDir,
        env: { HSMB_FAULT_INJECTION: '1' },
        config: { appliances, workersPerAppliance: 1, backupHsm: { dir: join(root, 'backup-hsm') } },
        log,
      });
      await exercise(t, 'hsm-y1');
      sampler.stop();
      const workers = [...sampler.seen.values()];
      assert.ok(checkWorkers(workers, pins) >= 5, 'crypto, officer and backup workers were all inspected');
      for (const worker of workers) {
        for (const name of names) assert.equal(worker.env[name], undefined, `worker ${String(worker.pid)} inherited ${name}`);
        const appliance = worker.argv.find((arg) => arg.startsWith('--appliance='))?.slice('--appliance='.length);
        const own = appliances.find((candidate) => candidate.id === appliance);
        // Each appliance's worker sees its own module environment and not another's.
        if (own) assert.equal(worker.env['SOFTHSM2_CONF'], own.env.SOFTHSM2_CONF, `worker of ${String(appliance)}`);
      }
      assert.ok(workers.some((worker) => worker.argv.includes('--appliance=hsm-x1')) && workers.some((worker) => worker.argv.includes('--appliance=hsm-y1')));
      for (const line of lines) assertNoPin('a log line', line, pins);
    } finally {
      sampler.stop();
      await t?.dispose();
      for (const name of names) Reflect.deleteProperty(process.env, name);
      rmSync(root, { recursive: true, force: true });
    }
  });
});
