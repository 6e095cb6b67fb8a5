import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { createCertificateAuthority, issueCertificate } from '@hsm-broker/dev-pki';
import type { IssuedCertificate } from '@hsm-broker/dev-pki';

const day = 86_400_000;

/** Writes a file under a temporary name and renames it into place, as certificate rotation tools do. */
export function replaceFile(path: string, contents: string): void {
  writeFileSync(`${path}.new`, contents, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}

/**
 * A certificate authority for tests, with the broker's server certificate
 * (127.0.0.1, localhost) written to `dir` and client credentials on demand.
 * @internal
 */
export class TestPki {
  readonly ca: IssuedCertificate;
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;

  constructor(dir: string, name = 'test CA') {
    mkdirSync(dir, { recursive: true });
    this.dir = dir;
    this.ca = createCertificateAuthority({ commonName: name, notBefore: new Date(Date.now() - day), notAfter: new Date(Date.now() + 2 * day) });
    this.caFile = join(dir, 'ca.pem');
    this.serverCertFile = join(dir, 'server.pem');
    this.serverKeyFile = join(dir, 'server.key');
    writeFileSync(this.caFile, this.ca.certificatePem);
    const server = this.issue({ commonName: 'broker', hosts: ['127.0.0.1', 'localhost'], usage: 'server' });
    writeFileSync(this.serverCertFile, server.certificatePem);
    writeFileSync(this.serverKeyFile, server.privateKeyPem, { mode: 0o600 });
  }

  /** A certificate from this CA, valid from a day ago for two days unless said otherwise. */
  issue(request: { commonName: string; uris?: string[]; hosts?: string[]; usage?: 'server' | 'client'; notBefore?: Date; notAfter?: Date }): IssuedCertificate {
    return issueCertificate({
      issuer: this.ca,
      commonName: request.commonName,
      ...(request.uris ? { uris: request.uris } : {}),
      ...(request.hosts ? { hosts: request.hosts } : {}),
      usage: request.usage ?? 'client',
      notBefore: request.notBefore ?? new Date(Date.now() - day),
      notAfter: request.notAfter ?? new Date(Date.now() + 2 * day),
    });
  }

  /** Channel credentials of a client with this SPIFFE ID (or CN when it is not a URI). */
  client(identity: string, validity: { notBefore?: Date; notAfter?: Date } = {}, trust: string = this.ca.certificatePem): ChannelCredentials {
    const spiffe = identity.startsWith('spiffe://');
    const issued = this.issue({ commonName: spiffe ? identity.slice(identity.lastIndexOf('/') + 1) : identity, ...(spiffe ? { uris: [identity] } : {}), ...validity });
    return credentials.createSsl(Buffer.from(trust), Buffer.from(issued.privateKeyPem), Buffer.from(issued.certificatePem));
  }

  /** Channel credentials that trust this CA but present no certificate. */
  anonymous(): ChannelCredentials {
    return credentials.createSsl(Buffer.from(this.ca.certificatePem));
  }
}
