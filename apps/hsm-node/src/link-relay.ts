import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

/**
 * The node's TCP front for PKCS#11 when a test needs to slow the link: a
 * relay from TCP to p11-kit's Unix socket that can hold every chunk back by
 * a set delay in each direction, keeping order. (socat is the front
 * otherwise; this kernel has no netem to delay packets.)
 */
export class LinkRelay {
  readonly #socketPath: string;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  delayMs = 0;

  constructor(socketPath: string) {
    this.#socketPath = socketPath;
  }

  /** Listens on `port` (all interfaces). */
  listen(port: number): Promise<void> {
    const server = createServer((client) => this.#relay(client));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '0.0.0.0', () => resolve());
    });
  }

  #relay(client: Socket): void {
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
