import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { AuditTrail } from '../audit-trail.js';
import type { Logger } from '../logger.js';
import { unidentifiedIdentity } from '../access/peer-identity.js';
import type { KmsCaller } from './kms-call.js';
import type { KmsOperation } from './kms-crypto-operations.js';
import { kmsErrorOf, kmsReasons, kmsRefusal } from './kms-errors.js';
import type { KmsBody } from './kms-request-fields.js';
import type { SigV4Verifier } from './sigv4-verifier.js';

/** Largest request body: a 64 KiB plaintext in base64 with the largest encryption context, with room to spare. */
export const maxKmsBodyBytes = 256 * 1024;
/** How long a KMS request may run (KMS requests carry no deadline). */
const kmsRequestMs = 60_000;
const targetPrefix = 'TrentService.';
const operationPattern = /^[A-Za-z]{1,64}$/;
const contentTypes = new Set(['application/x-amz-json-1.1', 'application/x-amz-json-1.0']);

/** What the listener needs. */
export interface KmsListenerOptions {
  listen: string;
  /** PEM server certificate chain and key; undefined serves plaintext (loopback only, checked at configuration). */
  tls: { cert: Buffer; key: Buffer } | undefined;
  verifier: SigV4Verifier;
  /** Access key id → broker identity. */
  identities: ReadonlyMap<string, string>;
  operations: Readonly<Record<string, KmsOperation>>;
  /** KMS operations that exist in the KMS API but not here: answered UnsupportedOperationException. */
  unsupported: ReadonlySet<string>;
  audit: AuditTrail;
  log: Logger;
}

/** A listening KMS endpoint. */
export interface KmsListener {
  /** host:port actually bound. */
  address: string;
  port: number;
  /** The endpoint URL to give an AWS SDK (`https://127.0.0.1:8443`). */
  url: string;
  close(): Promise<void>;
}

function peerOf(request: IncomingMessage): string {
  const { remoteAddress = '', remotePort = 0 } = request.socket;
  return remoteAddress.includes(':') ? `ipv6:[${remoteAddress}]:${String(remotePort)}` : `ipv4:${remoteAddress}:${String(remotePort)}`;
}

function send(response: ServerResponse, requestId: string, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': String(bytes.length), 'x-amzn-requestid': requestId });
  response.end(bytes);
}

/** Reads the body up to the limit; undefined when it is longer (the connection is then closed). */
function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxKmsBodyBytes) {
        resolve(undefined);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** Failures the SDK retries: the same signature may come again and must then be served. */
function retryable(error: unknown): boolean {
  const failure = BrokerError.from(error);
  return failure.retryable || failure.code === Code.INTERNAL || failure.code === Code.DEADLINE_EXCEEDED || failure.code === Code.UNKNOWN;
}

/**
 * The KMS JSON protocol over HTTP(S): `POST /`, `X-Amz-Target:
 * TrentService.<Operation>`, a SigV4-signed JSON body. Requests that fail
 * before an operation runs (unsigned, badly signed, not JSON, unknown
 * operation) are written to the audit trail here; everything else is
 * audited by the call pipeline the operation runs through.
 */
export async function startKmsListener(options: KmsListenerOptions): Promise<KmsListener> {
  const { verifier, identities, operations, unsupported, audit, log } = options;
  const refuse = (response: ServerResponse, requestId: string, started: number, who: { identity: string; peer: string; operation: string }, error: BrokerError): void => {
    const shape = kmsErrorOf(error);
    audit.record({
      time: new Date().toISOString(),
      identity: who.identity,
      peer: who.peer,
      operation: who.operation,
      appliances: [],
      code: error.code,
      reason: error.reason,
      latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      requestId,
    });
    log.debug('KMS request refused', { operation: who.operation, type: shape.type, message: shape.message });
    send(response, requestId, shape.status, { __type: shape.type, message: shape.message });
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const started = performance.now();
    const requestId = randomUUID();
    const peer = peerOf(request);
    const target = request.headers['x-amz-target'];
    const operation = typeof target === 'string' && target.startsWith(targetPrefix) && operationPattern.test(target.slice(targetPrefix.length)) ? target.slice(targetPrefix.length) : 'KmsRequest';
    const anonymous = { identity: unidentifiedIdentity, peer, operation };
    if (request.method !== 'POST' || request.url !== '/') {
      refuse(response, requestId, started, anonymous, kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.unknownOperation, 'request: the KMS protocol is POST / with X-Amz-Target'));
      return;
    }
    const body = await readBody(request);
    if (body === undefined) {
      refuse(response, requestId, started, anonymous, BrokerError.invalidArgument('request', `the body is longer than ${String(maxKmsBodyBytes)} bytes`, 'REQUEST_TOO_LARGE'));
      return;
    }
    let verified;
    try {
      verified = verifier.verify({ method: request.method, url: request.url, rawHeaders: request.rawHeaders, body });
    } catch (error: unknown) {
      log.warn('KMS request with a bad signature refused', { peer, operation, reason: BrokerError.from(error).reason });
      refuse(response, requestId, started, anonymous, BrokerError.from(error));
      return;
    }
    const identity = identities.get(verified.accessKeyId) ?? unidentifiedIdentity;
    const who = { identity, peer, operation };
    const caller: KmsCaller = { identity, peer, requestId, deadline: Date.now() + kmsRequestMs };
    const run = operations[operation];
    if (typeof target !== 'string' || !target.startsWith(targetPrefix) || !run) {
      const known = typeof target === 'string' && unsupported.has(target.slice(targetPrefix.length));
      verifier.remember(verified);
      refuse(response, requestId, started, who, kmsRefusal(
        known ? Code.UNIMPLEMENTED : Code.INVALID_ARGUMENT,
        known ? kmsReasons.unsupported : kmsReasons.unknownOperation,
        known ? `X-Amz-Target: ${operation} is not offered by this endpoint` : `X-Amz-Target: ${quoteInput(typeof target === 'string' ? target : '')} is not a KMS operation`,
      ));
      return;
    }
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    let parsed: unknown;
    try {
      if (!contentTypes.has(contentType)) throw new Error('content type');
      parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    } catch {
      verifier.remember(verified);
      refuse(response, requestId, started, who, kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.serialization, 'request: expected a JSON object sent as application/x-amz-json-1.1'));
      return;
    }
    try {
      const answer = await run(parsed as KmsBody, caller);
      verifier.remember(verified);
      send(response, requestId, 200, answer);
    } catch (error: unknown) {
      if (retryable(error)) verifier.release(verified);
      else verifier.remember(verified);
      const shape = kmsErrorOf(error);
      if (shape.status >= 500) log.error('KMS request failed', { operation, error: error instanceof Error ? error.message : String(error) });
      // The pipeline audited this call already; only the wire answer is left.
      send(response, requestId, shape.status, { __type: shape.type, message: shape.message });
    }
  };

  const listener = (request: IncomingMessage, response: ServerResponse): void => {
    handle(request, response).catch((error: unknown) => {
      log.error('KMS request handling failed', { error: error instanceof Error ? error.message : String(error) });
      if (!response.headersSent) send(response, randomUUID(), 500, { __type: 'KMSInternalException', message: 'the broker could not complete the request' });
      else response.destroy();
    });
  };
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.3' }, listener) : createHttpServer(listener);
  server.headersTimeout = 10_000;
  server.requestTimeout = kmsRequestMs + 10_000;
  const separator = options.listen.lastIndexOf(':');
  const host = options.listen.slice(0, separator).replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(options.listen.slice(separator + 1)), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    address: `${shownHost}:${String(port)}`,
    port,
    url: `${options.tls ? 'https' : 'http'}://${shownHost}:${String(port)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
