import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplianceState, KeySpec, SigningAlgorithm } from '@hsm-broker/client';
import { UsageError } from './command-line.js';
import { enumName, enumNames, parseEnumValue } from './enum-names.js';

describe('enum names', () => {
  it('lists the choosable names in declaration order, without UNSPECIFIED', () => {
    assert.deepEqual(enumNames(KeySpec), [
      'AES_256',
      'HMAC_256',
      'ECC_NIST_P256',
      'ECC_NIST_P384',
      'RSA_2048',
      'RSA_3072',
      'RSA_4096',
    ]);
  });

  it('parses names case-insensitively, with - for _', () => {
    assert.equal(parseEnumValue(KeySpec, 'AES_256', '--spec'), KeySpec.AES_256);
    assert.equal(parseEnumValue(KeySpec, 'rsa_4096', '--spec'), KeySpec.RSA_4096);
    assert.equal(
      parseEnumValue(SigningAlgorithm, 'ecdsa-sha-256', '--algorithm'),
      SigningAlgorithm.ECDSA_SHA_256,
    );
  });

  it('rejects unknown names and the hidden values, listing what is allowed', () => {
    for (const input of ['AES_512', 'UNSPECIFIED', 'unrecognized', '1', '']) {
      assert.throws(
        () => parseEnumValue(KeySpec, input, '--spec'),
        (error: unknown) =>
          error instanceof UsageError &&
          error.message ===
            `--spec: unknown value '${input}'; allowed: AES_256, HMAC_256, ECC_NIST_P256, ECC_NIST_P384, RSA_2048, RSA_3072, RSA_4096`,
        input,
      );
    }
  });

  it('names values for display, numbering the ones it does not know', () => {
    assert.equal(enumName(ApplianceState, ApplianceState.DEGRADED), 'DEGRADED');
    assert.equal(enumName(ApplianceState, 42), '42');
    assert.equal(enumName(ApplianceState, ApplianceState.UNRECOGNIZED), '-1');
  });
});
