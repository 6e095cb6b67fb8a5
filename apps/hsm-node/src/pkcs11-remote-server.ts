import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeConfig } from './node-config.js';
import type { NodeEvents } from './syslog-sender.js';
import { LinkRelay } from './link-relay.js';
import type { LinkTls } from './link-relay.js';
import { moduleEnvironment } from './token-store.js';

/**
 * The token served over TCP: `p11-kit server` exports it on a Unix socket and
 * the node's TLS front ({@link LinkRelay}) carries that socket over TCP with
 * mutual TLS under the fleet CA (p11-kit's protocol is plaintext, and the
 * user PIN crosses it). Nagle is off on the TCP side: without that, delayed
 * ACKs cap one connection at a few operations per second (DESIGN.md).
 * p11-kit runs in a process group of its own, so a zeroize can cut every
 * open connection at once, as a tamper response does.
 */
export class Pkcs11RemoteServer {
  readonly #config: NodeConfig;
  readonly #events: NodeEvents;
  readonly #tls: LinkTls;
  #children: ChildProcess[] = [];
  #relay: LinkRelay | undefined;
  #stopping = false;
  #linkDelayMs = 0;

  /** The delay the link relay adds in each direction (tests: a slow link). */
  get linkDelayMs(): number {
    return this.#linkDelayMs;
  }

  set linkDelayMs(ms: number) {
    this.#linkDelayMs = ms;
    if (this.#relay) this.#relay.delayMs = ms;
  }

  constructor(config: NodeConfig, events: NodeEvents, tls: LinkTls) {
    this.#config = config;
    this.#events = events;
    this.#tls = tls;
  }

  /** Starts serving; a helper that dies is restarted after a second. */
  start(): void {
    this.#stopping = false;
    const socket = join(this.#config.runDir, 'pkcs11.sock');
    rmSync(socket, { force: true });
    const env = moduleEnvironment(this.#config);
    const server = this.#spawn('p11-kit', ['server', '-f', '-n', socket, '--provider', this.#config.modulePath, `pkcs11:token=${this.#config.label}`], env);
    this.#children = [server];
    const relay = new LinkRelay(socket, this.#tls, this.#config.cloneClients, (peer, reason) => {
      this.#events.emit('warning', 'PKCS11_REFUSED', `PKCS#11 link refused ${peer}: ${reason}`, { peer });
    });
    relay.delayMs = this.linkDelayMs;
    this.#relay = relay;
    relay.listen(this.#config.pkcs11Port).catch((error: unknown) => {
      this.#events.emit('crit', 'PKCS11_RELAY_FAILED', `PKCS#11 TLS front could not listen: ${error instanceof Error ? error.message : String(error)}`);
    });
    this.#events.emit('info', 'PKCS11_SERVING', `PKCS#11 token ${this.#config.label} served with mutual TLS on TCP port ${String(this.#config.pkcs11Port)}`, {
      port: String(this.#config.pkcs11Port),
    });
  }
  #spawn(command: string, args: string[], env: Record<string, string>): ChildProcess {
    const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code, signal) => {
      if (this.#stopping || !this.#children.includes(child)) return;
      this.#events.emit('warning', 'PKCS11_HELPER_EXITED', `${command} exited (${signal ?? String(code)}); restarting the PKCS#11 service`, { helper: command });
      this.stop();
      setTimeout(() => this.start(), 1000).unref();
    });
    return child;
  }

  /** Stops serving and cuts every open connection. */
  stop(): void {
    this.#stopping = true;
    for (const child of this.#children) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    this.#children = [];
    this.#relay?.close();
    this.#relay = undefined;
  }
}
