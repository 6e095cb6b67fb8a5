import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePkcs11Uri } from './pkcs11-uri.js';

describe('PKCS#11 URIs (RFC 7512)', () => {
  it('parses token, serial, slot and query attributes with percent-encoding', () => {
    assert.deepEqual(parsePkcs11Uri('pkcs11:token=My%20HSM;serial=1234;slot-id=7?pin-source=file:/run/pin&module-path=/usr/lib/x.so'), {
      token: 'My HSM',
      serial: '1234',
      slotId: 7,
      pinSource: 'file:/run/pin',
      modulePath: '/usr/lib/x.so',
    });
  });

  it('refuses PINs in URIs and unknown attributes', () => {
    assert.throws(() => parsePkcs11Uri('pkcs11:token=a?pin-value=1234'), /must not carry pin-value/);
    assert.throws(() => parsePkcs11Uri('pkcs11:color=red'), /unknown attribute "color"/);
    assert.throws(() => parsePkcs11Uri('token=a'), /must start with "pkcs11:"/);
    assert.throws(() => parsePkcs11Uri('pkcs11:slot-id=x'), /slot-id must be a decimal/);
  });
});
