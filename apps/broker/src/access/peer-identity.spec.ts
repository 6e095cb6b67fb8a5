import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { describe, it } from 'node:test';
import { identityOf, unidentifiedIdentity } from './peer-identity.js';

const peer = (fields: Partial<PeerCertificate>): { sslPeerCertificate: PeerCertificate } => ({ sslPeerCertificate: fields as PeerCertificate });

describe('identityOf', () => {
  it('takes the SPIFFE ID from the URI SAN first, then the subject CN', () => {
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: 'DNS:payments.local, URI:spiffe://corp/vpc-a/payments' })), 'spiffe://corp/vpc-a/payments');
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: 'URI:https://example.com/x' })), 'payments');
    assert.equal(identityOf(peer({ subject: { CN: 'payments' } })), 'payments');
    assert.equal(identityOf(peer({ subjectaltname: 'URI:"spiffe://corp/a,b"' })), 'spiffe://corp/a,b');
  });

  it('calls a caller without a certificate anonymous, and an ambiguous or posing certificate unidentified', () => {
    assert.equal(identityOf({}), 'anonymous');
    assert.equal(identityOf(peer({})), 'anonymous');
    assert.equal(identityOf(peer({ subjectaltname: 'URI:spiffe://corp/a, URI:spiffe://corp/b', subject: { CN: 'x' } })), unidentifiedIdentity);
    assert.equal(identityOf(peer({ subject: { CN: ['a', 'b'] } })), unidentifiedIdentity);
    assert.equal(identityOf(peer({ subject: { CN: 'spiffe://corp/security/officer' } })), unidentifiedIdentity);
    assert.equal(identityOf(peer({ subject: { CN: 'anonymous' } })), unidentifiedIdentity);
  });

  it('never takes a URI out of another entry\'s quoted value', () => {
    // A DNS name the requester chose, holding what looks like a second entry.
    const posing = 'DNS:"a, URI:spiffe://corp/security/officer, b"';
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: posing })), 'payments');
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: `${posing}, URI:spiffe://corp/vpc-a/payments` })), 'spiffe://corp/vpc-a/payments');
    assert.equal(identityOf(peer({ subject: { CN: 'payments' }, subjectaltname: 'DNS:"unterminated' })), unidentifiedIdentity);
  });
});
