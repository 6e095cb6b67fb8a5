import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { runCli } from './cli.js';

async function hsmctl(argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
  const status = await runCli(
    argv,
    { stdin: Object.assign(Readable.from([]), { isTTY: false }), stdout: sink(out), stderr: sink(err), env: {} },
    () => {
      throw new Error('pki commands must not connect to a broker');
    },
  );
  return { status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe('hsmctl pki', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsmctl-pki-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('init writes a CA and a server certificate for loopback, keys with mode 0600, without a broker', async () => {
    const result = await hsmctl(['pki', 'init', '--dir', dir]);
    assert.equal(result.status, 0, result.stderr);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    const server = new X509Certificate(readFileSync(join(dir, 'server.pem')));
    assert.ok(ca.ca);
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
    assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(server.checkHost('localhost'), 'localhost');
    assert.equal(createPrivateKey(readFileSync(join(dir, 'server.key'))).asymmetricKeyType, 'ec');
    for (const key of ['ca.key', 'server.key']) assert.equal(statSync(join(dir, key)).mode & 0o777, 0o600);
    assert.match(result.stdout, /clientCa: .*ca\.pem/);
  });

  it('issue puts a SPIFFE ID in the URI SAN, names the files after it, and refuses to overwrite', async () => {
    const result = await hsmctl(['pki', 'issue', 'spiffe://corp/vpc-a/payments', '--dir', dir, '--days', '7']);
    assert.equal(result.status, 0, result.stderr);
    const leaf = new X509Certificate(readFileSync(join(dir, 'payments.pem')));
    assert.equal(leaf.subjectAltName, 'URI:spiffe://corp/vpc-a/payments');
    assert.ok(leaf.verify(new X509Certificate(readFileSync(join(dir, 'ca.pem'))).publicKey));
    assert.ok(new Date(leaf.validTo).getTime() - Date.now() < 8 * 86_400_000);
    const again = await hsmctl(['pki', 'issue', 'spiffe://corp/vpc-a/payments', '--dir', dir]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists/);
    const plain = await hsmctl(['pki', 'issue', 'batch-job', '--dir', dir]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(new X509Certificate(readFileSync(join(dir, 'batch-job.pem'))).subject, 'CN=batch-job');
  });

  it('refuses malformed identities and a missing CA, naming what is wrong', async () => {
    const bad = await hsmctl(['pki', 'issue', 'spiffe://Corp/x y', '--dir', dir]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /IDENTITY: .* is not a SPIFFE ID/);
    const noCa = await hsmctl(['pki', 'issue', 'spiffe://corp/a/b', '--dir', join(dir, 'none')]);
    assert.equal(noCa.status, 1);
    assert.match(noCa.stderr, /no development CA .*pki init/);
  });
});
