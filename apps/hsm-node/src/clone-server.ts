import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { BrokerError, Code } from '@hsm-broker/errors';
import { cloneBodyLimitBytes, cloneOfficerOperations, cloneUserOperations, decodeCloneJson, encodeCloneJson } from '@hsm-broker/pkcs11';
import type { NodeConfig } from './node-config.js';
import type { NodeEvents } from './syslog-sender.js';
import { TokenSession } from './token-session.js';
import { moduleEnvironment } from './token-store.js';

/** An officer session idle this long is closed (a broker that vanished mid-transfer). */
const officerIdleMs = 60_000;

/** The clone endpoint's certificate, key and the fleet CA, in memory. */
export interface CloneTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

interface OfficerEntry {
  session: TokenSession;
  timer: NodeJS.Timeout;
  peer: string;
}

function peerName(request: IncomingMessage): string {
  const certificate = (request.socket as TLSSocket).getPeerCertificate();
  return typeof certificate.subject?.CN === 'string' ? certificate.subject.CN : 'unknown';
}

function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cloneBodyLimitBytes) {
        reject(BrokerError.invalidArgument('body', `larger than ${String(cloneBodyLimitBytes)} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        const value = text === '' ? {} : decodeCloneJson(text);
        if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
        resolve(value as Record<string, unknown>);
      } catch {
        reject(BrokerError.invalidArgument('body', 'expected a JSON object'));
      }
    });
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, value: unknown): void {
  const body = encodeCloneJson(value);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function httpStatus(error: BrokerError): number {
  if (error.code === Code.PERMISSION_DENIED) return 403;
  if (error.failureClass === 'caller') return error.code === Code.NOT_FOUND ? 404 : 400;
  return 503;
}

/**
 * The node's clone endpoint, over mutual TLS with the fleet CA: wrap a key
 * object under a trusted KEK, unwrap such a blob, and the officer steps that
 * carry a trusted KEK between HSMs. p11-kit's RPC cannot carry AES key wrap,
 * so these run here, inside the node's HSM, as cloning does on real
 * appliances; only wrapped blobs and public keys cross the network.
 */
export class CloneServer {
  readonly #config: NodeConfig;
  readonly #events: NodeEvents;
  readonly #officers = new Map<string, OfficerEntry>();
  #user: Promise<TokenSession> | undefined;
  #server: Server | undefined;
  #suspended = false;
  serial = '';

  constructor(config: NodeConfig, events: NodeEvents) {
    this.#config = config;
    this.#events = events;
  }

  /** Reads the TLS files (before the node drops root), for {@link listen}. */
  static readTls(config: NodeConfig): CloneTls {
    const { caFile, certFile, keyFile } = config.cloneTls;
    return { ca: readFileSync(caFile), cert: readFileSync(certFile), key: readFileSync(keyFile) };
  }

  /** Listens on the clone port. */
  async listen(tls: CloneTls): Promise<void> {
    const server = createServer(
      { ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
      (request, response) => {
        this.#handle(request, response).catch((error: unknown) => {
          const failure = BrokerError.from(error);
          send(response, httpStatus(failure), { error: failure.toJSON() });
        });
      },
    );
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#config.clonePort, '0.0.0.0', () => resolve());
    });
    this.#events.emit('info', 'CLONE_SERVING', `clone endpoint on TCP port ${String(this.#config.clonePort)} (mutual TLS)`, { port: String(this.#config.clonePort) });
  }

  /** Refuses new work and ends every session (zeroize in progress). */
  suspend(): void {
    this.#suspended = true;
    void this.#user?.then((session) => session.kill(), () => undefined);
    this.#user = undefined;
    for (const [id, entry] of this.#officers) {
      clearTimeout(entry.timer);
      entry.session.kill();
      this.#officers.delete(id);
    }
  }

  /** Accepts work again. */
  resume(): void {
    this.#suspended = false;
  }

  /** Stops listening and ends every session. */
  async close(): Promise<void> {
    this.suspend();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (this.#suspended) throw new BrokerError(Code.UNAVAILABLE, `appliance ${this.#config.id} is zeroizing`, { reason: 'APPLIANCE_ZEROIZING', failureClass: 'appliance' });
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const parts = path.split('/').filter(Boolean);
    const peer = peerName(request);
    if (!this.#config.cloneClients.has(peer)) {
      this.#events.emit('warning', 'CLONE_REFUSED', `clone endpoint refused ${peer}: not an allowed clone client`, { peer });
      throw new BrokerError(Code.PERMISSION_DENIED, `${peer} may not use the clone endpoint of ${this.#config.id}`, { reason: 'CLONE_CLIENT_REFUSED' });
    }
    if (request.method === 'GET' && path === '/v1/status') {
      send(response, 200, { appliance: this.#config.id, label: this.#config.label, serial: this.serial });
      return;
    }
    if (request.method === 'POST' && parts.length === 3 && parts[0] === 'v1' && parts[1] === 'user' && cloneUserOperations.has(parts[2] ?? '')) {
      const op = parts[2] ?? '';
      const args = await readBody(request);
      const result = await (await this.#userSession()).call(op, args);
      this.#events.emit('notice', op === 'wrapKey' ? 'KEY_EXPORTED' : 'KEY_IMPORTED', `${op} of ${String(args['label'])} for ${peer}`, {
        label: String(args['label']),
        peer,
      });
      send(response, 200, { result });
      return;
    }
    if (request.method === 'POST' && path === '/v1/officer') {
      const session = await TokenSession.open(
        { role: 'so', modulePath: this.#config.modulePath, label: this.#config.label, pin: this.#config.soPin },
        moduleEnvironment(this.#config),
      );
      const id = randomUUID();
      this.#officers.set(id, { session, peer, timer: this.#idleTimer(id) });
      this.#events.emit('notice', 'OFFICER_SESSION_OPENED', `security-officer session opened for ${peer}`, { peer });
      send(response, 200, { session: id });
      return;
    }
    if (parts.length >= 3 && parts[0] === 'v1' && parts[1] === 'officer') {
      const id = parts[2] ?? '';
      const entry = this.#officers.get(id);
      if (!entry || entry.peer !== peer) throw new BrokerError(Code.NOT_FOUND, `session: no officer session ${id}`, { reason: 'OFFICER_SESSION_UNKNOWN' });
      if (request.method === 'DELETE' && parts.length === 3) {
        clearTimeout(entry.timer);
        this.#officers.delete(id);
        await entry.session.close();
        send(response, 200, { result: null });
        return;
      }
      const op = parts[3] ?? '';
      if (request.method === 'POST' && parts.length === 4 && cloneOfficerOperations.has(op)) {
        clearTimeout(entry.timer);
        entry.timer = this.#idleTimer(id);
        const args = await readBody(request);
        const result = await entry.session.call(op, args);
        if (op === 'receiveKek' || op === 'generateKek' || op === 'wrapKekFor') {
          this.#events.emit('notice', 'TRUSTED_KEY_TRANSFER', `${op} ${String(args['label'])} for ${peer}`, { op, label: String(args['label']), peer });
        }
        send(response, 200, { result });
        return;
      }
    }
    throw new BrokerError(Code.NOT_FOUND, `path: ${request.method ?? ''} ${path} is not a clone endpoint route`, { reason: 'CLONE_ROUTE_UNKNOWN' });
  }

  #idleTimer(id: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const entry = this.#officers.get(id);
      this.#officers.delete(id);
      void entry?.session.close();
    }, officerIdleMs);
    timer.unref();
    return timer;
  }

  #userSession(): Promise<TokenSession> {
    const current = this.#user;
    if (current) {
      return current.then((session) => (session.closed ? this.#openUser() : session), () => this.#openUser());
    }
    return this.#openUser();
  }

  #openUser(): Promise<TokenSession> {
    const opening = TokenSession.open(
      { role: 'user', modulePath: this.#config.modulePath, label: this.#config.label, pin: this.#config.userPin },
      moduleEnvironment(this.#config),
    );
    this.#user = opening;
    return opening;
  }
}
