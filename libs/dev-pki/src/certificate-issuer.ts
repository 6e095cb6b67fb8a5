import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  boolean,
  childrenOf,
  explicit,
  objectIdentifier,
  octetString,
  readElement,
  sequence,
  set,
  tlv,
  time,
  unsignedInteger,
  utf8String,
} from './der-writer.js';

/** A certificate and its private key, both PEM. */
export interface IssuedCertificate {
  certificatePem: string;
  /** PKCS#8 PEM, unencrypted: write it with mode 0600. */
  privateKeyPem: string;
}

/** When a certificate is valid. */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** What {@link issueCertificate} puts in a leaf certificate. */
export interface LeafRequest extends Validity {
  /** The CA that signs it. */
  issuer: IssuedCertificate;
  commonName: string;
  /** URI SANs, e.g. `spiffe://corp/vpc-a/payments`. */
  uris?: readonly string[];
  /** DNS names and IP addresses (server certificates). */
  hosts?: readonly string[];
  /** serverAuth, clientAuth or both in the extended key usage. */
  usage: 'server' | 'client' | 'server-and-client';
}

const oid = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const signatureAlgorithm = sequence(objectIdentifier(oid.ecdsaWithSha256));

function nameOf(commonName: string): Buffer {
  return sequence(set(sequence(objectIdentifier(oid.commonName), utf8String(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function keyIdOf(publicKey: KeyObject): Buffer {
  // RFC 7093 allows any stable hash of the key; SHA-1 of the SPKI keeps the usual 20 bytes.
  return createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
}

function generalName(host: string): Buffer {
  const family = isIP(host);
  if (family === 4) return tlv(0x87, Buffer.from(host.split('.').map(Number)));
  if (family === 6) return tlv(0x87, ipv6Bytes(host));
  return tlv(0x82, Buffer.from(host, 'ascii'));
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = [...headGroups, ...new Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2));
  return bytes;
}

function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return unsignedInteger(bytes);
}

function toPem(der: Buffer): string {
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

/** The issuer's encoded subject Name, copied byte for byte so that chain building matches it exactly. */
function subjectNameOf(certificatePem: string): Buffer {
  const der = new X509Certificate(certificatePem).raw;
  const tbs = childrenOf(der, readElement(der, 0))[0];
  // TBSCertificate: version, serial, signature, issuer, validity, subject, …
  const subject = tbs ? childrenOf(der, tbs)[5] : undefined;
  if (!subject) throw new Error('issuer certificate has no subject');
  return der.subarray(subject.start, subject.end);
}

function build(options: {
  subject: Buffer;
  issuerName: Buffer;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  issuerKeyId: Buffer;
  validity: Validity;
  extensions: Buffer[];
}): string {
  const spki = options.subjectKey.export({ type: 'spki', format: 'der' });
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))),
    serialNumber(),
    signatureAlgorithm,
    options.issuerName,
    sequence(time(options.validity.notBefore), time(options.validity.notAfter)),
    options.subject,
    spki,
    explicit(
      3,
      sequence(
        ...options.extensions,
        extension(oid.subjectKeyIdentifier, false, octetString(keyIdOf(options.subjectKey))),
        extension(oid.authorityKeyIdentifier, false, sequence(tlv(0x80, options.issuerKeyId))),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: options.signingKey, dsaEncoding: 'der' });
  return toPem(sequence(tbs, signatureAlgorithm, bitString(signature)));
}

function newKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

/** A self-signed ECDSA P-256 certificate authority for development and tests. */
export function createCertificateAuthority(request: Validity & { commonName: string }): IssuedCertificate {
  const { publicKey, privateKey } = newKeyPair();
  const name = nameOf(request.commonName);
  const certificatePem = build({
    subject: name,
    issuerName: name,
    subjectKey: publicKey,
    signingKey: privateKey,
    issuerKeyId: keyIdOf(publicKey),
    validity: request,
    extensions: [
      extension(oid.basicConstraints, true, sequence(boolean(true), unsignedInteger(Buffer.from([0])))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000011x, one unused bit.
      extension(oid.keyUsage, true, bitString(Buffer.from([0x06]), 1)),
    ],
  });
  return { certificatePem, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** An ECDSA P-256 leaf certificate signed by `request.issuer`. */
export function issueCertificate(request: LeafRequest): IssuedCertificate {
  const { publicKey, privateKey } = newKeyPair();
  const issuerKey = createPrivateKey(request.issuer.privateKeyPem);
  const issuerPublic = new X509Certificate(request.issuer.certificatePem).publicKey;
  const names = [...(request.uris ?? []).map((uri) => tlv(0x86, Buffer.from(uri, 'ascii'))), ...(request.hosts ?? []).map(generalName)];
  const purposes = { server: [oid.serverAuth], client: [oid.clientAuth], 'server-and-client': [oid.serverAuth, oid.clientAuth] }[request.usage];
  const certificatePem = build({
    subject: nameOf(request.commonName),
    issuerName: subjectNameOf(request.issuer.certificatePem),
    subjectKey: publicKey,
    signingKey: issuerKey,
    issuerKeyId: keyIdOf(issuerPublic),
    validity: request,
    extensions: [
      extension(oid.basicConstraints, true, sequence()),
      // digitalSignature (bit 0): 0b1xxxxxxx, seven unused bits.
      extension(oid.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
      extension(oid.extendedKeyUsage, false, sequence(...purposes.map(objectIdentifier))),
      ...(names.length > 0 ? [extension(oid.subjectAltName, false, sequence(...names))] : []),
    ],
  });
  return { certificatePem, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
