import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { OctetCountedReader, parseSyslogMessage } from '@hsm-broker/audit';
import type { ParsedSyslogMessage } from '@hsm-broker/audit';

/**
 * A real RFC 5424 collector over TCP for tests: it parses octet-counted
 * frames (RFC 6587) and keeps every message. It can be stopped (listener and
 * connections) and started again on the same port.
 * @internal
 */
export class SyslogCollector {
  readonly messages: ParsedSyslogMessage[] = [];
  /** Raw bytes received, to search for what must never be sent. */
  readonly received: Buffer[] = [];
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #waiters: (() => void)[] = [];
  #port = 0;

  get port(): number {
    return this.#port;
  }

  /** Listens on loopback (the same port as before after a stop). */
  async start(): Promise<void> {
    const server = createServer((socket) => {
      this.#sockets.add(socket);
      const reader = new OctetCountedReader();
      socket.on('data', (chunk: Buffer) => {
        this.received.push(chunk);
        for (const frame of reader.push(chunk)) {
          const parsed = parseSyslogMessage(frame);
          if (!parsed) throw new Error(`not an RFC 5424 message: ${frame.slice(0, 80)}`);
          this.messages.push(parsed);
        }
        for (const waiter of this.#waiters.splice(0)) waiter();
      });
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const address = server.address();
    if (address && typeof address === 'object') this.#port = address.port;
  }

  /** Closes the listener and every connection, as a collector outage would. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }

  /** Resolves once `predicate` holds over the messages received so far. */
  async waitFor(predicate: (messages: ParsedSyslogMessage[]) => boolean): Promise<void> {
    while (!predicate(this.messages)) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}
