#!/usr/bin/env node
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerError } from '@hsm-broker/errors';
import { CloneServer } from './clone-server.js';
import { loadNodeConfig, NodeConfigError } from './node-config.js';
import type { NodeConfig } from './node-config.js';
import { Pkcs11RemoteServer } from './pkcs11-remote-server.js';
import { NodeEvents } from './syslog-sender.js';
import { initializeNodeToken, readTokenSerial, tokenDirEmpty, wipeTokenDir, writeSoftHsmConf } from './token-store.js';

// The appliance node: `hsm-node serve` (the container's entrypoint) sets up
// the token on first boot and serves it; `hsm-node zeroize` asks the running
// node to wipe its token (a tamper response); `hsm-node health` is the
// container's health check.

const runDir = process.env['HSM_NODE_RUN_DIR'] || '/run/hsm-node';
const pidFile = join(runDir, 'hsm-node.pid');
const serialFile = join(runDir, 'serial');
const linkDelayFile = join(runDir, 'link-delay-ms');

function readSerial(): string {
  return existsSync(serialFile) ? readFileSync(serialFile, 'utf8').trim() : '';
}

async function serve(config: NodeConfig): Promise<void> {
  const events = new NodeEvents(config.id, config.syslog);
  writeSoftHsmConf(config);
  rmSync(serialFile, { force: true });
  if (tokenDirEmpty(config)) {
    await initializeNodeToken(config);
    events.emit('notice', 'TOKEN_INITIALIZED', `token ${config.label} initialised on first boot`, { label: config.label });
  }
  const tls = CloneServer.readTls(config);
  dropPrivileges(config);
  const clone = new CloneServer(config, events);
  clone.serial = await readTokenSerial(config);
  const pkcs11 = new Pkcs11RemoteServer(config, events, tls);
  pkcs11.start();
  await clone.listen(tls);
  writeFileSync(pidFile, String(process.pid));
  writeFileSync(serialFile, clone.serial);
  events.emit('info', 'NODE_READY', `appliance ${config.id} ready`, { label: config.label, serial: clone.serial });

  process.on('SIGUSR1', () => {
    // A slow link is a test fault: production nodes refuse to delay their own link.
    if (!config.linkRelay) return;
    const ms = existsSync(linkDelayFile) ? Number(readFileSync(linkDelayFile, 'utf8')) : 0;
    pkcs11.linkDelayMs = Number.isInteger(ms) && ms >= 0 ? ms : 0;
    events.emit('warning', 'LINK_DELAY', `PKCS#11 link delay set to ${String(pkcs11.linkDelayMs)} ms`, { delayMs: String(pkcs11.linkDelayMs) });
  });

  let zeroizing = false;
  process.on('SIGUSR2', () => {
    if (zeroizing) return;
    zeroizing = true;
    void (async () => {
      const previous = clone.serial;
      events.emit('crit', 'ZEROIZED', `zeroize: wiping token ${config.label}`, { label: config.label, serial: previous });
      clone.suspend();
      pkcs11.stop();
      wipeTokenDir(config);
      await initializeNodeToken(config);
      clone.serial = await readTokenSerial(config);
      pkcs11.start();
      clone.resume();
      writeFileSync(serialFile, clone.serial);
      events.emit('notice', 'TOKEN_INITIALIZED', `token ${config.label} initialised empty after zeroize`, { label: config.label, serial: clone.serial, previousSerial: previous });
    })()
      .catch((error: unknown) => {
        events.emit('crit', 'ZEROIZE_FAILED', `zeroize failed: ${BrokerError.from(error).message}`);
        process.exitCode = 1;
        process.kill(process.pid, 'SIGTERM');
      })
      .finally(() => {
        zeroizing = false;
      });
  });
  const stop = (): void => {
    events.emit('info', 'NODE_STOPPING', `appliance ${config.id} stopping`);
    pkcs11.stop();
    void clone.close().finally(() => {
      events.close();
      process.exit();
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * Started as root only to read mounted secrets: from here on the node runs as
 * HSM_NODE_RUN_AS (the image's `hsm` user), owning its token volume.
 */
function dropPrivileges(config: NodeConfig): void {
  const target = process.env['HSM_NODE_RUN_AS'];
  if (!target || process.getuid?.() !== 0) return;
  const uid = Number(target);
  const chownTree = (path: string): void => {
    chownSync(path, uid, uid);
    if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry));
  };
  chownTree(config.tokenDir);
  chownTree(config.runDir);
  // Root's supplementary groups (root, and whatever the image gave it) would
  // survive setgid/setuid: clear them first, so the node keeps only its own group.
  process.setgroups?.([]);
  process.setgid?.(uid);
  process.setuid?.(uid);
  if (process.getgroups?.().some((gid) => gid !== uid)) throw new Error(`supplementary groups remain after dropping privileges: ${String(process.getgroups?.())}`);
}

async function zeroize(): Promise<void> {
  const before = readSerial();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = readSerial();
    if (now !== '' && now !== before) {
      console.log(`zeroized: token serial ${before} -> ${now}`);
      return;
    }
  }
  throw new Error('the node did not report a new token within 60 s');
}

/** `hsm-node link-delay MS`: sets the relay's delay (needs HSM_NODE_LINK_RELAY=1 on the node). */
function linkDelay(value: string | undefined): void {
  if (process.env['HSM_NODE_LINK_RELAY'] !== '1') throw new Error('link-delay: this node was not started with HSM_NODE_LINK_RELAY=1 (a test fault)');
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) throw new Error(`link-delay: expected milliseconds from 0 to 60000, got ${String(value)}`);
  writeFileSync(linkDelayFile, String(ms));
  process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGUSR1');
}

function health(): void {
  const pid = Number(readFileSync(pidFile, 'utf8'));
  process.kill(pid, 0);
  if (readSerial() === '') throw new Error('token not ready');
}

const command = process.argv[2] ?? 'serve';
try {
  if (command === 'serve') await serve(loadNodeConfig());
  else if (command === 'zeroize') await zeroize();
  else if (command === 'health') health();
  else if (command === 'link-delay') linkDelay(process.argv[3]);
  else {
    console.error(`usage: hsm-node [serve|zeroize|health|link-delay MS]; got ${command}`);
    process.exitCode = 2;
  }
} catch (error: unknown) {
  console.error(`hsm-node ${command}: ${error instanceof NodeConfigError || error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
