import { Agent, request } from 'node:https';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { SerializedBrokerError } from '@hsm-broker/errors';
import { cloneBodyLimitBytes, decodeCloneJson, encodeCloneJson } from '@hsm-broker/pkcs11';
import type { CloneOperation, CloneOperations } from '@hsm-broker/pkcs11';
import { setAwakeTimeout } from './awake-clock.js';

/** How to reach an appliance node's clone endpoint (mutual TLS with the fleet CA). */
export interface CloneEndpoint {
  /** `https://host:port` */
  url: string;
  /** The fleet CA (PEM) the node's certificate must chain to. */
  ca: Buffer;
  /** This broker's client certificate and key (PEM), signed by the fleet CA. */
  cert: Buffer;
  key: Buffer;
}

/** The argument of clone operation `K`. */
export type CloneArgs<K extends CloneOperation> = Parameters<CloneOperations[K]>[0];
/** The result of clone operation `K`. */
export type CloneResult<K extends CloneOperation> = ReturnType<CloneOperations[K]>;

/** An officer session on a node, held open across the steps of one transfer. */
export interface CloneOfficerSession {
  call<K extends CloneOperation>(op: K, args: CloneArgs<K>): Promise<CloneResult<K>>;
}

/**
 * Talks to one node's clone endpoint. Network failures and timeouts are
 * appliance faults (they trip the breaker like a dead PKCS#11 link);
 * errors the node reports keep their class. Time limits run on the awake
 * clock, as on the worker pipe: a stall of the broker's own loop is not
 * held against the node.
 */
export class CloneClient {
  readonly #endpoint: CloneEndpoint;
  readonly #agent: Agent;
  readonly #applianceId: string;

  constructor(applianceId: string, endpoint: CloneEndpoint) {
    this.#applianceId = applianceId;
    this.#endpoint = endpoint;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 4, ca: endpoint.ca, cert: endpoint.cert, key: endpoint.key, minVersion: 'TLSv1.3' });
  }

  /** A crypto-user clone operation (wrapKey, unwrapKey). */
  call<K extends CloneOperation>(op: K, args: CloneArgs<K>, timeoutMs: number): Promise<CloneResult<K>> {
    return this.#request('POST', `/v1/user/${op}`, args, timeoutMs) as Promise<CloneResult<K>>;
  }

  /** Runs `body` in one officer session on the node, closing it afterwards. */
  async officer<T>(body: (session: CloneOfficerSession) => Promise<T>, timeoutMs: number): Promise<T> {
    const opened = (await this.#request('POST', '/v1/officer', {}, timeoutMs)) as { session: string };
    const base = `/v1/officer/${encodeURIComponent(opened.session)}`;
    try {
      return await body({
        call: <K extends CloneOperation>(op: K, args: CloneArgs<K>) => this.#request('POST', `${base}/${op}`, args, timeoutMs) as Promise<CloneResult<K>>,
      });
    } finally {
      await this.#request('DELETE', base, {}, timeoutMs).catch(() => undefined);
    }
  }

  /** Closes idle connections. */
  close(): void {
    this.#agent.destroy();
  }

  #fault(message: string, cause?: unknown): BrokerError {
    return new BrokerError(Code.UNAVAILABLE, `appliance ${this.#applianceId}: clone endpoint ${message}`, {
      reason: 'CLONE_ENDPOINT_UNAVAILABLE',
      failureClass: 'appliance',
      ...(cause === undefined ? {} : { cause }),
    });
  }

  #request(method: string, path: string, args: unknown, timeoutMs: number): Promise<unknown> {
    const body = encodeCloneJson(args);
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, this.#endpoint.url), {
        method,
        agent: this.#agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      const timer = setAwakeTimeout(() => req.destroy(this.#fault(`did not answer ${path} within ${String(timeoutMs)} ms`)), timeoutMs);
      req.on('error', (error) => {
        timer.clear();
        reject(error instanceof BrokerError ? error : this.#fault(`unreachable: ${error.message}`, error));
      });
      req.on('response', (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > cloneBodyLimitBytes) req.destroy(this.#fault('sent an oversized answer'));
          else chunks.push(chunk);
        });
        response.on('end', () => {
          timer.clear();
          let parsed: { result?: unknown; session?: string; error?: SerializedBrokerError };
          try {
            parsed = decodeCloneJson(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
          } catch (error: unknown) {
            reject(this.#fault('sent an answer that is not JSON', error));
            return;
          }
          if (parsed.error) {
            const remote = BrokerError.fromJSON(parsed.error);
            reject(new BrokerError(remote.code, `appliance ${this.#applianceId}: ${remote.message}`, { reason: remote.reason, details: remote.details, failureClass: remote.failureClass, cause: remote }));
          } else if (response.statusCode !== 200) {
            reject(this.#fault(`answered HTTP ${String(response.statusCode)}`));
          } else {
            resolve(parsed.session !== undefined ? parsed : parsed.result);
          }
        });
      });
      req.end(body);
    });
  }
}
