import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Metadata, credentials } from '@grpc/grpc-js';
import { KeyServiceClient, KeySpec, KeyUsage } from '@hsm-broker/proto';
import { openLogCapture } from './testing/log-capture.js';
import { startTestBroker } from './testing/broker-harness.js';

const scanner = fileURLToPath(new URL('../../../tools/test/scan-broker-logs.mjs', import.meta.url));

function scan(dir: string, ...flags: string[]): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [scanner, ...flags, dir], { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the log-leak scan of the integration suites', { timeout: 300_000 }, () => {
  it('passes a log whose secret fields were redacted, fails one that carries a secret, and never prints it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-scan-'));
    try {
      const plaintext = `card ${randomBytes(8).toString('hex')}`;
      const pin = randomBytes(6).toString('hex');
      const clean = openLogCapture('clean', dir);
      clean.addSecret(plaintext);
      clean.addSecret(pin);
      clean.log.info('encrypt', { plaintext, appliance: { userPin: pin }, keyId: 'k' });
      const passed = scan(dir, '--require-logs');
      assert.equal(passed.status, 0, passed.output);
      assert.match(readFileSync(clean.file, 'utf8'), /"plaintext":"\[redacted\]"/);

      const leaky = openLogCapture('leaky', dir);
      const data = randomBytes(24);
      leaky.addSecret(data);
      leaky.log.warn('oops', { note: data.toString('base64') });
      const failed = scan(dir, '--require-logs');
      assert.equal(failed.status, 1, failed.output);
      assert.match(failed.output, /leaky-.*\.log:1: a secret/);
      assert.ok(!failed.output.includes(data.toString('base64')) && !failed.output.includes(plaintext), 'the scan does not print secrets');

      const pinned = openLogCapture('pinned', dir);
      pinned.addSecret(pin);
      pinned.log.error('login failed', { detail: `C_Login with ${pin}` });
      assert.match(scan(dir).output, /pinned-.*\.log:1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finding no log at all fails when logs are required', () => {
    const empty = mkdtempSync(join(tmpdir(), 'hsmb-scan-'));
    try {
      assert.equal(scan(empty, '--require-logs').status, 1);
      assert.equal(scan(empty).status, 0);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('a test broker keeps its full log with request ids, and records its PINs and the plaintexts it was sent', async () => {
    const t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '2x1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_MIN_ZONES: '2' } });
    try {
      await t.clients.keys.createKey({ keyId: 'scan/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
      const plaintext = Buffer.from(`scan plaintext ${randomBytes(6).toString('hex')}`);
      const { ciphertext } = await t.clients.crypto.encrypt({ keyId: 'scan/aes', plaintext, encryptionContext: {} });
      await t.clients.crypto.decrypt({ ciphertext, encryptionContext: {} });
      const raw = new KeyServiceClient(t.broker.address, credentials.createInsecure());
      const metadata = new Metadata();
      metadata.set('x-request-id', 'scan-request-42');
      await new Promise<void>((resolve) => raw.describeKey({ keyId: 'scan/missing' }, metadata, () => resolve()));
      raw.close();
      await t.stop();
      const lines = readFileSync(t.logCapture.file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.ok(lines.some((line) => line['message'] === 'appliance started'), 'start-up lines kept at any console level');
      const refused = lines.find((line) => line['message'] === 'request refused' && line['requestId'] === 'scan-request-42');
      assert.ok(refused, 'the refusal carries the caller\'s request id');
      assert.equal(refused['method'], 'DescribeKey');
      const secrets = readFileSync(t.logCapture.file.replace(/\.log$/, '.secrets'), 'utf8').split('\n').filter(Boolean);
      assert.ok(secrets.includes(plaintext.toString('base64')), 'the plaintext is recorded');
      // Two appliances and the backup HSM, a user and an SO PIN each.
      assert.ok(secrets.length >= 7, `${String(secrets.length)} secrets recorded`);
      const scanned = scan(join(t.logCapture.file, '..'));
      assert.equal(scanned.status, 0, scanned.output);
    } finally {
      await t.dispose();
    }
  });
});
