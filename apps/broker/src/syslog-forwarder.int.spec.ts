import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:tls';
import type { Server } from 'node:tls';
import { AuditChain, OctetCountedReader, octetCountedFrame, parseSyslogMessage, syslogMessage } from '@hsm-broker/audit';
import { createLogger } from './logger.js';
import { SyslogForwarder } from './syslog-forwarder.js';

const origin = { hostname: 'broker', appName: 'hsm-broker', procId: '1' };

function frames(count: number, chain = new AuditChain()): Buffer[] {
  return Array.from({ length: count }, (_, index) => {
    const { entry, line } = chain.link({ type: 'call', time: new Date().toISOString(), identity: 'spiffe://corp/a', peer: 'p', operation: 'Sign', appliances: [], code: 0, latencyMs: 1, requestId: `r-${String(index)}` });
    return octetCountedFrame(syslogMessage(entry, line, origin));
  });
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}

describe('syslog forwarding over TLS, with a bounded disk buffer', { timeout: 120_000 }, () => {
  let dir: string;
  let server: Server;
  let port: number;
  const received: string[] = [];
  const log = createLogger('error');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hsmb-syslog-'));
    // A collector certificate for `localhost`, from the openssl CLI.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (socket) => {
      const reader = new OctetCountedReader();
      socket.on('data', (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) received.push(parseSyslogMessage(frame)?.msg ?? 'unparseable');
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers octet-counted RFC 5424 messages to a TLS collector that the CA vouches for', async () => {
    const forwarder = new SyslogForwarder(
      { address: `127.0.0.1:${String(port)}`, host: '127.0.0.1', port, tls: { caFile: join(dir, 'cert.pem'), certFile: undefined, keyFile: undefined, serverName: 'localhost' }, bufferBytes: 1 << 20 },
      join(dir, 'buffer-tls'),
      log,
    );
    try {
      for (const frame of frames(20)) forwarder.send(frame);
      await until(() => received.length >= 20);
      assert.equal(received.length, 20);
      assert.ok(received.every((msg) => msg.startsWith('{"seq":')));
      assert.equal(forwarder.state().connected, true);
      assert.equal(forwarder.state().tls, true);
    } finally {
      forwarder.stop();
    }
  });

  it('refuses a collector whose certificate names another host, buffering instead', async () => {
    const forwarder = new SyslogForwarder(
      { address: `127.0.0.1:${String(port)}`, host: '127.0.0.1', port, tls: { caFile: join(dir, 'cert.pem'), certFile: undefined, keyFile: undefined, serverName: 'siem.example' }, bufferBytes: 1 << 20 },
      join(dir, 'buffer-wrong-name'),
      log,
    );
    try {
      const before = received.length;
      forwarder.send(frames(1)[0] ?? Buffer.alloc(0));
      await until(() => forwarder.state().lastError !== '');
      assert.match(forwarder.state().lastError, /localhost|altname|Hostname/i);
      assert.equal(forwarder.state().connected, false);
      assert.ok(forwarder.state().bufferedBytes > 0);
      assert.equal(received.length, before);
    } finally {
      forwarder.stop();
    }
  });

  it('counts what does not fit in the buffer while the collector is unreachable, without blocking', () => {
    // Port 1 on loopback: nothing listens there.
    const forwarder = new SyslogForwarder({ address: '127.0.0.1:1', host: '127.0.0.1', port: 1, tls: undefined, bufferBytes: 4096 }, join(dir, 'buffer-full'), log);
    try {
      const all = frames(100);
      for (const frame of all) forwarder.send(frame);
      const state = forwarder.state();
      assert.ok(state.bufferedBytes <= 4096 && state.bufferedBytes > 0);
      assert.ok(state.droppedTotal > 0);
      let fitted = 0;
      let bytes = 0;
      for (const frame of all) {
        if (bytes + frame.length > 4096) continue;
        bytes += frame.length;
        fitted++;
      }
      assert.equal(state.droppedTotal, all.length - fitted);
      assert.equal(state.sentTotal, 0);
    } finally {
      forwarder.stop();
    }
  });
});
