import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyMetadata, KeySpec, KeyState, KeyUsage } from '@hsm-broker/client';
import { formatTime, renderKeyList, renderKeyMetadata, renderKeyVersions } from './key-view.js';

const created = new Date('2026-11-30T04:54:00.123Z');

const signingKey = KeyMetadata.fromPartial({
  keyId: 'payments/signing',
  keySpec: KeySpec.ECC_NIST_P256,
  keyUsage: KeyUsage.SIGN_VERIFY,
  keyState: KeyState.ENABLED,
  primaryVersion: 2,
  minDecryptionVersion: 1,
  versions: [
    {
      version: 1,
      createdAt: created,
      replicas: [
        { applianceId: 'hsm-b1', verifiedAt: new Date('2026-12-02T10:00:00Z') },
        { applianceId: 'hsm-a1', verifiedAt: new Date('2026-12-02T09:00:00Z') },
      ],
    },
    {
      version: 2,
      createdAt: new Date('2026-12-01T00:00:00Z'),
      replicas: [{ applianceId: 'hsm-a1', verifiedAt: new Date('2026-12-02T11:00:00Z') }],
      missingReplicas: ['hsm-c1', 'hsm-b1'],
    },
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

  it('describes one key as aligned fields, labels sorted, then its versions', () => {
    assert.equal(
      renderKeyMetadata(signingKey),
      [
        'Key ID:                  payments/signing',
        'Spec:                    ECC_NIST_P256',
        'Usage:                   SIGN_VERIFY',
        'State:                   ENABLED',
        'Primary version:         2',
        'Min decryption version:  1',
        'Rotation period:         none (manual only)',
        'Created:                 2026-11-30T04:54:00Z',
        'Description:             Signs payment orders',
        'Labels:                  env=prod, team=payments',
        'Replicas:                hsm-a1, hsm-b1',
        '',
        'VERSION  CREATED               STATUS   HOLDERS         MISSING         LAST VERIFIED',
        '      1  2026-11-30T04:54:00Z  -        hsm-a1, hsm-b1  -               2026-12-02T09:00:00Z',
        '      2  2026-12-01T00:00:00Z  primary  hsm-a1          hsm-b1, hsm-c1  2026-12-02T11:00:00Z',
        '',
      ].join('\n'),
    );
  });

  it('shows the rotation period and the next rotation of a key rotated automatically', () => {
    const rotating = KeyMetadata.fromPartial({
      keyId: 'k',
      rotationPeriodDays: 90,
      nextRotationTime: new Date('2027-03-01T00:00:00Z'),
    });
    const text = renderKeyMetadata(rotating);
    assert.match(text, /^Rotation period:\s+90 days$/m);
    assert.match(text, /^Next rotation:\s+2027-03-01T00:00:00Z$/m);
    assert.match(text, /^Min decryption version:\s+-$/m, 'a broker that sends 0 retires nothing');
    assert.doesNotMatch(text, /VERSION/, 'no table without versions');
  });

  it('marks retired versions and versions whose copies were never verified', () => {
    const key = KeyMetadata.fromPartial({
      keyId: 'k',
      primaryVersion: 3,
      minDecryptionVersion: 3,
      versions: [
        { version: 3, replicas: [{ applianceId: 'hsm-a1', verifiedAt: new Date('2026-12-02T00:00:00Z') }] },
        { version: 1, replicas: [{ applianceId: 'hsm-a1' }] },
        { version: 2, missingReplicas: ['hsm-a1'] },
      ],
    });
    assert.equal(
      renderKeyVersions(key),
      [
        'VERSION  CREATED  STATUS   HOLDERS  MISSING  LAST VERIFIED',
        '      1  -        retired  hsm-a1   -        -',
        '      2  -        retired  -        hsm-a1   -',
        '      3  -        primary  hsm-a1   -        2026-12-02T00:00:00Z',
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
