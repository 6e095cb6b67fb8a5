import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { workspaceRoot } from './process-run.js';

// The README's quick start, run verbatim as a newcomer would: `npm start` on a
// fresh data directory, then the quick start's shell block, extracted from
// README.md now, so the test breaks when the README and the code drift apart.

/** The first ```sh block under `## Quick start` in README.md. */
function quickStartBlock(): string {
  const readme = readFileSync(join(workspaceRoot, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith('Quick start\n'));
  assert.ok(section, 'README.md has a "## Quick start" section');
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'the quick start has a sh block');
  return block;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Waits for the broker's start-up line on stderr, keeping every line in `lines`. */
function startUpLine(child: ChildProcess, lines: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`no start-up line within ${String(timeoutMs)} ms:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
    child.stderr?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const complete = buffered.split('\n');
      buffered = complete.pop() ?? '';
      for (const line of complete) {
        lines.push(line);
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry['message'] === 'hsm-broker serving') {
          clearTimeout(timer);
          resolve(entry);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited ${String(code)} before serving:\n${lines.slice(-20).join('\n')}`));
    });
  });
}

describe('README quick start, verbatim, after npm start on a fresh data directory', { timeout: 900_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hsmb-quick-start-'));
  mkdirSync(join(workspaceRoot, 'tmp'), { recursive: true });
  // Inside the workspace (tmp/ is ignored by git) so `npx hsmctl` finds the workspace bin.
  const workDir = mkdtempSync(join(workspaceRoot, 'tmp', 'quick-start-'));
  const logLines: string[] = [];
  let broker: ChildProcess | undefined;

  after(async () => {
    if (broker && broker.exitCode === null && broker.pid !== undefined) {
      const exited = new Promise((resolve) => broker?.once('exit', resolve));
      process.kill(-broker.pid, 'SIGTERM');
      await exited;
    }
    keepLogForLeakScan(dataDir, logLines);
    rmSync(workDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}-backup-hsm`, { recursive: true, force: true });
  });

  it('npm start serves, says where its data is, which fleet it found and how to call it; the quick start block then succeeds', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${String(port)}`;
    broker = spawn('npm', ['start'], {
      cwd: workspaceRoot,
      env: { ...process.env, HSMB_DATA_DIR: dataDir, HSMB_LISTEN: address, HSMB_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    const serving = await startUpLine(broker, logLines, 600_000);
    assert.equal(serving['address'], address);
    assert.equal(serving['dataDir'], dataDir);
    assert.equal(serving['metadataStore'], join(dataDir, 'broker.db'));
    assert.equal(serving['fleet'], 'embedded SoftHSM 3x1');
    assert.deepEqual(serving['appliances'], ['hsm-a1@az-a:healthy', 'hsm-b1@az-b:healthy', 'hsm-c1@az-c:healthy']);
    assert.equal(serving['tracing'], 'off');
    assert.equal(serving['try'], `npx hsmctl --address ${address} fleet status`);

    const block = quickStartBlock();
    // Aliases are off in scripts unless asked for; everything else runs as written.
    const run = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', `shopt -s expand_aliases\n${block}`], {
      cwd: workDir,
      env: { ...process.env, HSMB_ADDRESS: address },
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(run.status, 0, `the quick start failed (exit ${String(run.status)}):\n${run.stderr}`);
    assert.match(run.stdout, /(^|\n)hello/, 'decrypt printed the plaintext');
    assert.match(`${run.stdout}${run.stderr}`, /Verified OK/, 'OpenSSL verified the signature');
    assert.match(run.stdout, /hsm-a1/, 'fleet status lists the appliances');
    // The try line works as printed too.
    const tryLine = spawnSync('bash', ['-c', String(serving['try'])], { cwd: workDir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(tryLine.status, 0, tryLine.stderr);
    assert.match(tryLine.stdout, /az-a/);
  });
});

/**
 * The broker's log, with its PINs and the quick start's plaintexts, for the
 * log-leak scan that closes the integration stage (tools/test/scan-broker-logs.mjs).
 */
function keepLogForLeakScan(dataDir: string, lines: readonly string[]): void {
  const dir = process.env['HSMB_TEST_LOG_DIR'] ?? join(workspaceRoot, 'reports', 'broker-logs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = join(dir, `readme-quick-start-${String(process.pid)}`);
  appendFileSync(`${base}.log`, lines.filter((line) => line.startsWith('{')).map((line) => `${line}\n`).join(''));
  const secrets = ['release-1.0'];
  for (const secretsDir of [join(dataDir, 'secrets'), join(`${dataDir}-backup-hsm`, 'secrets')]) {
    if (!existsSync(secretsDir)) continue;
    for (const name of readdirSync(secretsDir)) {
      const pins = JSON.parse(readFileSync(join(secretsDir, name), 'utf8')) as Record<string, unknown>;
      for (const pin of Object.values(pins)) if (typeof pin === 'string') secrets.push(pin);
    }
  }
  appendFileSync(`${base}.secrets`, secrets.map((secret) => `${Buffer.from(secret).toString('base64')}\n`).join(''), { mode: 0o600 });
}
