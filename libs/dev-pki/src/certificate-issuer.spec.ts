import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createCertificateAuthority, issueCertificate } from './certificate-issuer.js';

const day = 86_400_000;
const now = Date.now();
const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + day) };

describe('development certificate authority', () => {
  const ca = createCertificateAuthority({ commonName: 'hsm-broker dev CA', ...validity });

  it('makes a self-signed CA certificate that openssl accepts as a CA', () => {
    const certificate = new X509Certificate(ca.certificatePem);
    assert.equal(certificate.ca, true);
    assert.equal(certificate.subject, 'CN=hsm-broker dev CA');
    assert.ok(certificate.verify(certificate.publicKey));
  });

  it('issues client certificates with a SPIFFE URI SAN that verify against the CA with openssl', () => {
    const leaf = issueCertificate({ issuer: ca, commonName: 'payments', uris: ['spiffe://corp/vpc-a/payments'], usage: 'client', ...validity });
    const certificate = new X509Certificate(leaf.certificatePem);
    assert.equal(certificate.subjectAltName, 'URI:spiffe://corp/vpc-a/payments');
    assert.equal(certificate.ca, false);
    assert.ok(certificate.checkIssued(new X509Certificate(ca.certificatePem)));
    assert.ok(certificate.verify(new X509Certificate(ca.certificatePem).publicKey));
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-devpki-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), ca.certificatePem);
      writeFileSync(join(dir, 'leaf.pem'), leaf.certificatePem);
      const out = execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
      assert.match(out, /leaf\.pem: OK/);
      const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'], { encoding: 'utf8' });
      assert.match(text, /TLS Web Client Authentication/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('puts DNS names and IP addresses of a server certificate in its SANs', () => {
    const leaf = issueCertificate({ issuer: ca, commonName: 'broker', hosts: ['localhost', '127.0.0.1', '::1'], usage: 'server', ...validity });
    const certificate = new X509Certificate(leaf.certificatePem);
    assert.equal(certificate.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.equal(certificate.checkHost('localhost'), 'localhost');
    assert.equal(certificate.checkIP('127.0.0.1'), '127.0.0.1');
  });

  it('writes the validity period asked for, including one already over', () => {
    const expired = issueCertificate({ issuer: ca, commonName: 'old', usage: 'client', notBefore: new Date(now - 3 * day), notAfter: new Date(now - day) });
    const certificate = new X509Certificate(expired.certificatePem);
    assert.ok(new Date(certificate.validTo).getTime() < now);
    const farFuture = createCertificateAuthority({ commonName: 'long', notBefore: new Date(now), notAfter: new Date('2060-01-01T00:00:00Z') });
    assert.equal(new Date(new X509Certificate(farFuture.certificatePem).validTo).toISOString(), '2060-01-01T00:00:00.000Z');
  });

  it('does not verify against another CA', () => {
    const other = createCertificateAuthority({ commonName: 'hsm-broker dev CA', ...validity });
    const leaf = issueCertificate({ issuer: ca, commonName: 'x', usage: 'client', ...validity });
    assert.equal(new X509Certificate(leaf.certificatePem).verify(new X509Certificate(other.certificatePem).publicKey), false);
  });
});
