#!/usr/bin/env node
// The broker-to-worker layer alone: one appliance worker process on a fresh
// SoftHSM token, driven through libs/fleet's ApplianceWorker with a fixed
// number of calls in flight. Prints calls/s and the CPU each call cost the
// calling process and the worker process (CPU time, not wall time, so a busy
// machine slows the run but inflates the figures much less).
//
//   node tools/bench/worker-roundtrip.mjs [--root DIR] [--calls N] [--in-flight K]
//
// --root points at a built workspace (default this one), so two builds can
// be compared on the same machine in the same minute.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: new URL('../../', import.meta.url).pathname },
    calls: { type: 'string', default: '4000' },
    'in-flight': { type: 'string', default: '1,32' },
    module: { type: 'string', default: '/usr/lib/softhsm/libsofthsm2.so' },
  },
});
const root = resolve(values.root);
const { ApplianceWorker } = await import(pathToFileURL(join(root, 'libs/fleet/dist/index.js')).href);
const calls = Number(values.calls);
const depths = values['in-flight'].split(',').map(Number);

const dir = mkdtempSync(join(tmpdir(), 'hsmb-roundtrip-'));
mkdirSync(join(dir, 'tokens'));
const conf = join(dir, 'softhsm2.conf');
writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
const env = { SOFTHSM2_CONF: conf };
const base = { applianceId: 'roundtrip', modulePath: values.module, env, startTimeoutMs: 30_000 };
// Throw-away PINs for a throw-away token.
const pins = { soPin: 'so-roundtrip-1', userPin: 'user-roundtrip-1' };

/** utime + stime of a process, in microseconds. */
function processCpuUs(pid) {
  const fields = readFileSync(`/proc/${String(pid)}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

try {
  const setup = await ApplianceWorker.start({ ...base, selector: {}, role: 'none' });
  await setup.call('initializeToken', { label: 'roundtrip', ...pins }, 60_000);
  await setup.stop();
  const worker = await ApplianceWorker.start({ ...base, selector: { token: 'roundtrip' }, role: 'user', pin: pins.userPin });
  await worker.call('generateKey', { spec: 'ECC_NIST_P256', label: 'rt-ec' }, 60_000);
  await worker.call('generateKey', { spec: 'AES_256', label: 'rt-aes' }, 60_000);
  const scenarios = {
    sign: () => worker.call('sign', { label: 'rt-ec', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32, 1) }, 10_000),
    encrypt: () => worker.call('encrypt', { label: 'rt-aes', iv: Buffer.alloc(12, 2), aad: Buffer.alloc(0), plaintext: Buffer.alloc(1024, 3) }, 10_000),
    random: () => worker.call('generateRandom', { length: 32 }, 10_000),
  };
  console.log(`| root | op | in flight | calls/s | caller CPU µs/call | worker CPU µs/call |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const [name, call] of Object.entries(scenarios)) {
    for (const depth of depths) {
      for (let i = 0; i < 200; i++) await call();
      const cpuBefore = process.cpuUsage();
      const workerBefore = processCpuUs(worker.pid);
      const started = performance.now();
      let sent = 0;
      await Promise.all(
        Array.from({ length: depth }, async () => {
          while (sent < calls) {
            sent++;
            await call();
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const workerUs = processCpuUs(worker.pid) - workerBefore;
      console.log(`| ${root} | ${name} | ${String(depth)} | ${(calls / seconds).toFixed(0)} | ${((cpu.user + cpu.system) / calls).toFixed(1)} | ${(workerUs / calls).toFixed(1)} |`);
    }
  }
  await worker.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
