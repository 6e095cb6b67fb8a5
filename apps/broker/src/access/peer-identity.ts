import type { ServerUnaryCall } from '@grpc/grpc-js';
import { anonymousIdentity } from '../call-pipeline.js';

const uriEntry = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;

/**
 * The identity a verified client certificate proves: its SPIFFE ID (the
 * `spiffe://` URI SAN) when it has one, else its subject CN. grpc-js fills
 * the peer certificate only after the handshake verified it against the
 * client CA, so an unverified certificate never names anyone. A certificate
 * with several SPIFFE IDs or several CNs is ambiguous (the SPIFFE X.509-SVID
 * profile allows exactly one) and names nobody.
 */
export function identityOf(authContext: ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']>): string {
  const certificate = authContext.sslPeerCertificate;
  if (!certificate || Object.keys(certificate).length === 0) return anonymousIdentity;
  const spiffeIds: string[] = [];
  for (const match of (certificate.subjectaltname ?? '').matchAll(uriEntry)) {
    const raw = match[1] ?? '';
    // Node quotes SAN values that contain separators; such a value is JSON.
    const uri = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (uri.startsWith('spiffe://')) spiffeIds.push(uri);
  }
  if (spiffeIds.length === 1 && spiffeIds[0]) return spiffeIds[0];
  if (spiffeIds.length > 1) return anonymousIdentity;
  const commonName: unknown = certificate.subject?.CN;
  return typeof commonName === 'string' && commonName !== '' ? commonName : anonymousIdentity;
}
