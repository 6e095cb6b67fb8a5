import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { describe, it } from 'node:test';
import { identityOf } from './peer-identity.js';

const peer = (fields: Partial<PeerCertificate>): { sslPeerCertificate: PeerCertificate } => ({ sslPeerCertificate: fields as PeerCertificate });

describe('identityOf', () => {
  it('takes the SPIFFE ID from the URI SAN first, then the subject CN', () => {
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: 'DNS:payments.local, URI:spiffe://corp/vpc-a/payments' })), 'spiffe://corp/vpc-a/payments');
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: 'URI:https://example.com/x' })), 'payments');
    assert.equal(identityOf(peer({ subject: { CN: 'payments' } })), 'payments');
    assert.equal(identityOf(peer({ subjectaltname: 'URI:"spiffe://corp/a,b"' })), 'spiffe://corp/a,b');
  });

  it('names nobody without a verified certificate, or with an ambiguous one', () => {
    assert.equal(identityOf({}), 'anonymous');
    assert.equal(identityOf(peer({})), 'anonymous');
    assert.equal(identityOf(peer({ subjectaltname: 'URI:spiffe://corp/a, URI:spiffe://corp/b', subject: { CN: 'x' } })), 'anonymous');
    assert.equal(identityOf(peer({ subject: { CN: ['a', 'b'] } })), 'anonymous');
  });
});
