import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { createServer } from 'node:tls';
import type { Server, TLSSocket } from 'node:tls';

/** Key material of the PKCS#11 link's TLS server: the node's certificate under the fleet CA. */
export interface LinkTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/**
 * The node's TCP front for PKCS#11: mutual TLS 1.3 under the fleet CA in
 * front of p11-kit's Unix socket. p11-kit's remote protocol has no transport
 * security of its own, and the user PIN crosses it in C_Login, so nothing
 * but a TLS client holding a fleet certificate with an allowed CN reaches
 * the token. The relay can also hold every chunk back by a set delay in each
 * direction, keeping order (tests slow a link that way: this kernel has no
 * netem).
 */
export class LinkRelay {
  readonly #socketPath: string;
  readonly #tls: LinkTls;
  readonly #allowed: ReadonlySet<string>;
  readonly #onRefused: (peer: string, reason: string) => void;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  delayMs = 0;

  /**
   * @param allowed certificate CNs that may use the token (the broker's)
   * @param onRefused told about every refused client (for the node's events)
   */
  constructor(socketPath: string, tls: LinkTls, allowed: ReadonlySet<string>, onRefused: (peer: string, reason: string) => void) {
    this.#socketPath = socketPath;
    this.#tls = tls;
    this.#allowed = allowed;
    this.#onRefused = onRefused;
  }

  /** Listens on `port` (all interfaces of the container). */
  listen(port: number): Promise<void> {
    const server = createServer({ ...this.#tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (client) => this.#accept(client));
    server.on('tlsClientError', (error, socket) => {
      this.#onRefused(socket.remoteAddress ?? 'unknown', error.message);
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '0.0.0.0', () => resolve());
    });
  }

  #accept(client: TLSSocket): void {
    const subject = client.getPeerCertificate().subject as { CN?: unknown } | undefined;
    const peer = typeof subject?.CN === 'string' ? subject.CN : 'unknown';
    if (!this.#allowed.has(peer)) {
      this.#onRefused(peer, 'not an allowed PKCS#11 client');
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = createConnection(this.#socketPath);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    this.#pipe(client, upstream);
    this.#pipe(upstream, client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  }

  #pipe(from: Socket, to: Socket): void {
    let releaseAt = 0;
    from.on('data', (chunk: Buffer) => {
      if (this.delayMs === 0 && releaseAt <= Date.now()) {
        to.write(chunk);
        return;
      }
      releaseAt = Math.max(releaseAt, Date.now() + this.delayMs);
      setTimeout(() => to.write(chunk), releaseAt - Date.now());
    });
  }

  /** Stops listening and cuts every connection. */
  close(): void {
    this.#server?.close();
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }
}
