import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyMetadata, KeySpec, KeyState, KeyUsage } from '@hsm-broker/client';
import { formatTime, renderKeyList, renderKeyMetadata } from './key-view.js';

const created = new Date('2026-11-30T04:54:00.123Z');

const signingKey = KeyMetadata.fromPartial({
  keyId: 'payments/signing',
  keySpec: KeySpec.ECC_NIST_P256,
  keyUsage: KeyUsage.SIGN_VERIFY,
  keyState: KeyState.ENABLED,
  primaryVersion: 2,
  versions: [
    { version: 1, createdAt: created },
    { version: 2, createdAt: new Date('2026-12-01T00:00:00Z') },
  ],
  description: 'Signs payment orders',
  labels: { team: 'payments', env: 'prod' },
  createdAt: created,
  replicas: ['hsm-a1', 'hsm-b1'],
});

describe('key views', () => {
  it('lists keys as a table', () => {
    const dataKey = KeyMetadata.fromPartial({
      keyId: 'k2',
      keySpec: KeySpec.AES_256,
      keyUsage: KeyUsage.ENCRYPT_DECRYPT,
      keyState: KeyState.PENDING_DELETION,
      primaryVersion: 1,
    });
    assert.equal(
      renderKeyList([signingKey, dataKey]),
      [
        'KEY ID            SPEC           USAGE            STATE             PRIMARY  CREATED               DESCRIPTION',
        'payments/signing  ECC_NIST_P256  SIGN_VERIFY      ENABLED                 2  2026-11-30T04:54:00Z  Signs payment orders',
        'k2                AES_256        ENCRYPT_DECRYPT  PENDING_DELETION        1  -',
        '',
      ].join('\n'),
    );
    assert.equal(renderKeyList([]), 'No keys.\n');
  });

  it('describes one key as aligned fields, labels sorted', () => {
    assert.equal(
      renderKeyMetadata(signingKey),
      [
        'Key ID:           payments/signing',
        'Spec:             ECC_NIST_P256',
        'Usage:            SIGN_VERIFY',
        'State:            ENABLED',
        'Primary version:  2',
        'Versions:         1 (2026-11-30T04:54:00Z), 2 (2026-12-01T00:00:00Z)',
        'Created:          2026-11-30T04:54:00Z',
        'Description:      Signs payment orders',
        'Labels:           env=prod, team=payments',
        'Replicas:         hsm-a1, hsm-b1',
        '',
      ].join('\n'),
    );
  });

  it('shows the deletion time of a key pending deletion', () => {
    const pending = KeyMetadata.fromPartial({ keyId: 'k', deletionTime: new Date('2027-01-01T00:00:00Z') });
    assert.match(renderKeyMetadata(pending), /^Deletion time:\s+2027-01-01T00:00:00Z$/m);
    assert.match(renderKeyMetadata(pending), /^Labels:\s+-$/m);
  });

  it('formats times to the second in UTC', () => {
    assert.equal(formatTime(created), '2026-11-30T04:54:00Z');
    assert.equal(formatTime(undefined), '-');
    assert.equal(formatTime(new Date(Number.NaN)), '-');
  });
});
