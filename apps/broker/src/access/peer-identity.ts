import type { ServerUnaryCall } from '@grpc/grpc-js';
import { anonymousIdentity } from '../call-pipeline.js';

/**
 * What a certificate that names no single identity is called: several SPIFFE
 * IDs or CNs, a SAN list that does not parse, or a CN that poses as a SPIFFE
 * ID or as `anonymous`. The access pipeline refuses it before any policy
 * check, so no grant (not even `identity: "*"`) can match it.
 */
export const unidentifiedIdentity = '(unidentified)';

/**
 * One entry of Node's `subjectaltname` string, read from where the previous
 * one ended: `TYPE:value` or `TYPE:"json"` (Node quotes values holding
 * separators), then `, ` or the end. Sticky, so a `, URI:` inside a quoted
 * value of another entry is never taken for an entry of its own.
 */
const sanEntry = /([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,"]*)(?:, |$)/y;

/** The SAN entries in order, or undefined when the string does not parse cleanly. */
function sanEntries(list: string): { type: string; value: string }[] | undefined {
  const entries: { type: string; value: string }[] = [];
  sanEntry.lastIndex = 0;
  while (sanEntry.lastIndex < list.length) {
    const match = sanEntry.exec(list);
    if (!match) return undefined;
    const [, type = '', raw = ''] = match;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        return undefined;
      }
    }
    entries.push({ type, value });
  }
  return entries;
}

/**
 * The identity a verified client certificate proves: its SPIFFE ID (the
 * `spiffe://` URI SAN) when it has one, else its subject CN. grpc-js fills
 * the peer certificate only after the handshake verified it against the
 * client CA, so an unverified certificate never names anyone. A certificate
 * that names no single identity (see {@link unidentifiedIdentity}) is
 * `(unidentified)`; a caller without a certificate is `anonymous`.
 */
export function identityOf(authContext: ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']>): string {
  const certificate = authContext.sslPeerCertificate;
  if (!certificate || Object.keys(certificate).length === 0) return anonymousIdentity;
  const entries = sanEntries(certificate.subjectaltname ?? '');
  if (!entries) return unidentifiedIdentity;
  const spiffeIds = entries.filter((entry) => entry.type === 'URI' && entry.value.startsWith('spiffe://')).map((entry) => entry.value);
  // The SPIFFE X.509-SVID profile allows exactly one SPIFFE ID.
  if (spiffeIds.length > 1) return unidentifiedIdentity;
  if (spiffeIds[0] !== undefined) return spiffeIds[0];
  const commonName: unknown = certificate.subject?.CN;
  if (typeof commonName !== 'string' || commonName === '') return unidentifiedIdentity;
  // A CN may not pose as a SPIFFE ID (only the URI SAN proves one) or as a reserved name.
  if (commonName.startsWith('spiffe://') || commonName === anonymousIdentity || commonName === unidentifiedIdentity) return unidentifiedIdentity;
  return commonName;
}
