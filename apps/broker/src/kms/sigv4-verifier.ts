import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';

/** How far a request's X-Amz-Date may be from the broker's clock, either way (as AWS allows). */
export const replayWindowMs = 5 * 60_000;
/** Most signatures remembered for replay refusal; past it the oldest are forgotten first. */
const maxRemembered = 200_000;

/** The parts of an HTTP request a signature covers. */
export interface SignedRequest {
  method: string;
  /** The request target as sent (`/`). */
  url: string;
  /** Raw header list as Node gives it: name, value, name, value… */
  rawHeaders: readonly string[];
  body: Buffer;
}

/** A verified signature: who signed, and the signature (to remember once served). */
export interface VerifiedSignature {
  accessKeyId: string;
  signature: string;
  /** When the signed request was made (ms since epoch); the signature is remembered until this plus the window. */
  signedAt: number;
}

/** Stable reasons of signature refusals; each maps to one KMS error type. */
export const signatureReasons = {
  missing: 'MISSING_AUTHENTICATION',
  incomplete: 'INCOMPLETE_SIGNATURE',
  unknownKey: 'UNRECOGNIZED_ACCESS_KEY',
  invalid: 'INVALID_SIGNATURE',
  expired: 'SIGNATURE_EXPIRED',
  replayed: 'REPLAYED_REQUEST',
} as const;

function refused(reason: string, message: string): BrokerError {
  return new BrokerError(Code.UNAUTHENTICATED, message, { reason, details: { field: 'authorization' } });
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** Header values by lower-case name, repeated headers joined by commas, each trimmed with inner runs of spaces collapsed (SigV4). */
function headersOf(rawHeaders: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    const value = (rawHeaders[i + 1] ?? '').trim().replace(/ +/g, ' ');
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous},${value}`);
  }
  return headers;
}

const authorizationPattern = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
const amzDatePattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
/** Headers a signature must cover: without them a request could be redirected to another host or operation. */
const requiredSigned = ['host', 'x-amz-date', 'x-amz-target'];

/**
 * Verifies AWS Signature Version 4 (header form, `AWS4-HMAC-SHA256`) for
 * the KMS service of one region: the access key is known, the credential
 * scope names this region, `kms` and the request's day, the date is inside
 * the replay window, the signature covers host, date and operation, and it
 * matches. A request once served is not served again: its signature is
 * remembered for the window ({@link remember}). Secrets are compared only as
 * HMAC keys and never appear in a message.
 */
export class SigV4Verifier {
  readonly #secrets: ReadonlyMap<string, string>;
  readonly #region: string;
  readonly #clock: () => number;
  /** Signatures of served requests, oldest first, with when each may be forgotten. */
  readonly #served = new Map<string, number>();
  /** Signatures of requests verified and still being served. */
  readonly #inFlight = new Set<string>();

  constructor(secrets: ReadonlyMap<string, string>, region: string, clock: () => number = Date.now) {
    this.#secrets = secrets;
    this.#region = region;
    this.#clock = clock;
  }

  /** Checks a request's signature; throws an UNAUTHENTICATED BrokerError naming what is wrong (never the secret). */
  verify(request: SignedRequest): VerifiedSignature {
    const headers = headersOf(request.rawHeaders);
    const authorization = headers.get('authorization');
    if (authorization === undefined || authorization === '') throw refused(signatureReasons.missing, 'authorization: the request is not signed; sign it with AWS Signature Version 4');
    const match = authorizationPattern.exec(authorization);
    if (!match) throw refused(signatureReasons.incomplete, 'authorization: not an AWS4-HMAC-SHA256 header with Credential, SignedHeaders and Signature');
    const [, accessKeyId = '', day = '', region = '', service = '', signedHeaderList = '', signature = ''] = match;
    const secret = this.#secrets.get(accessKeyId);
    if (secret === undefined) throw refused(signatureReasons.unknownKey, `authorization: the access key id ${quoteInput(accessKeyId)} is not known here`);
    if (region !== this.#region) throw refused(signatureReasons.invalid, `authorization: the credential scope names region ${quoteInput(region)}; this endpoint serves ${this.#region}`);
    if (service !== 'kms') throw refused(signatureReasons.invalid, `authorization: the credential scope names service ${quoteInput(service)}; this endpoint serves kms`);
    const signedHeaders = signedHeaderList.split(';');
    for (const name of requiredSigned) {
      if (!signedHeaders.includes(name)) throw refused(signatureReasons.incomplete, `authorization: SignedHeaders must include ${name}`);
    }
    if ([...signedHeaders].sort().join(';') !== signedHeaderList) throw refused(signatureReasons.incomplete, 'authorization: SignedHeaders must be sorted');
    const amzDate = headers.get('x-amz-date') ?? '';
    const date = amzDatePattern.exec(amzDate);
    if (!date) throw refused(signatureReasons.incomplete, 'x-amz-date: expected YYYYMMDDTHHMMSSZ');
    const [, y, mo, d, h, mi, s] = date.map(Number) as [number, number, number, number, number, number, number];
    const signedAt = Date.UTC(y, mo - 1, d, h, mi, s);
    if (!amzDate.startsWith(day)) throw refused(signatureReasons.invalid, 'authorization: the credential scope date is not the day of x-amz-date');
    const skew = signedAt - this.#clock();
    if (!Number.isFinite(signedAt) || Math.abs(skew) > replayWindowMs) {
      throw refused(signatureReasons.expired, `x-amz-date: signature expired: ${amzDate} is more than ${String(replayWindowMs / 60_000)} minutes from the broker's clock`);
    }
    const payloadHash = sha256(request.body);
    const claimedHash = headers.get('x-amz-content-sha256');
    if (claimedHash !== undefined && claimedHash !== payloadHash) throw refused(signatureReasons.invalid, 'x-amz-content-sha256: does not match the body');
    const [path = '/', query = ''] = request.url.split('?', 2);
    const canonicalHeaders = signedHeaders.map((name) => `${name}:${headers.get(name) ?? ''}\n`).join('');
    const canonicalRequest = [request.method, path, canonicalQuery(query), canonicalHeaders, signedHeaderList, payloadHash].join('\n');
    const scope = `${day}/${region}/${service}/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
    const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
    const expected = hmac(signingKey, stringToSign);
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
      throw refused(signatureReasons.invalid, 'authorization: the request signature does not match; check the secret access key and the signing method');
    }
    this.#forget();
    if (this.#served.has(signature)) throw refused(signatureReasons.replayed, 'authorization: this signed request was already served; sign every request afresh');
    // Copies sent at once must not all pass before the first one is remembered.
    if (this.#inFlight.has(signature)) throw refused(signatureReasons.replayed, 'authorization: this signed request is being served already; sign every request afresh');
    this.#inFlight.add(signature);
    return { accessKeyId, signature, signedAt };
  }

  /**
   * Remembers a served request's signature until its date leaves the window,
   * so the same bytes are refused if sent again. Called only once a request
   * was served or refused for good: a request throttled or failed by the
   * broker may be retried by the SDK with the same signature.
   */
  remember(verified: VerifiedSignature): void {
    this.#inFlight.delete(verified.signature);
    // Kept until two windows from now: at least until its date leaves the
    // window (a date is at most one window ahead), and in the order it was
    // served, so forgetting can stop at the first entry still kept.
    this.#served.set(verified.signature, this.#clock() + 2 * replayWindowMs);
    while (this.#served.size > maxRemembered) {
      const oldest = this.#served.keys().next();
      if (oldest.done === true) break;
      this.#served.delete(oldest.value);
    }
  }

  /** Lets a request that failed retryably (throttled, broker unavailable) be sent again with the same signature. */
  release(verified: VerifiedSignature): void {
    this.#inFlight.delete(verified.signature);
  }

  #forget(): void {
    const now = this.#clock();
    for (const [signature, until] of this.#served) {
      if (until >= now) break;
      this.#served.delete(signature);
    }
  }
}

/** SigV4's canonical query string: pairs sorted by name, then value, each URI-encoded once. */
function canonicalQuery(query: string): string {
  if (query === '') return '';
  const encode = (value: string): string => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return query
    .split('&')
    .map((pair) => pair.split('=', 2).map((part) => encode(decodeURIComponent(part))) as [string, string | undefined])
    .map(([name, value = '']) => [name, value] as const)
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}
