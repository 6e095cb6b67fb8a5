import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '@hsm-broker/errors';
import type { AliasStore, KeyAlias } from '@hsm-broker/keys';
import { aliasArn, keyArn, parseKeyReference, resolveKeyId } from './kms-key-ids.js';

const scope = { region: 'eu-west-1', account: '111122223333' };

/** An in-memory alias store for the resolution rules. */
function aliasesOf(entries: Record<string, string>): AliasStore {
  const alias = (aliasName: string): KeyAlias | undefined => (entries[aliasName] === undefined ? undefined : { aliasName, targetKeyId: entries[aliasName], createdAt: 0, updatedAt: 0 });
  return {
    getAlias: alias,
    createAlias: () => assert.fail('not used'),
    updateAlias: () => assert.fail('not used'),
    deleteAlias: () => false,
    deleteAliasesOf: () => 0,
    listAliases: () => [],
    close: () => undefined,
  };
}

function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (error: unknown) {
    assert.ok(error instanceof BrokerError);
    return error.reason;
  }
  return 'ACCEPTED';
}

describe('KMS key references', () => {
  it('presents keys and aliases as ARNs of the configured region and account', () => {
    assert.equal(keyArn(scope, 'app/aes'), 'arn:aws:kms:eu-west-1:111122223333:key/app/aes');
    assert.equal(aliasArn(scope, 'alias/payments'), 'arn:aws:kms:eu-west-1:111122223333:alias/payments');
  });

  it('accepts a bare id, a key ARN, an alias and an alias ARN', () => {
    const aliases = aliasesOf({ 'alias/payments': 'k-1' });
    assert.equal(resolveKeyId(scope, aliases, 'k-1', 'KeyId'), 'k-1');
    assert.equal(resolveKeyId(scope, aliases, keyArn(scope, 'app/aes'), 'KeyId'), 'app/aes');
    assert.equal(resolveKeyId(scope, aliases, 'alias/payments', 'KeyId'), 'k-1');
    assert.equal(resolveKeyId(scope, aliases, aliasArn(scope, 'alias/payments'), 'KeyId'), 'k-1');
    assert.equal(resolveKeyId(scope, aliases, 'alias/unknown', 'KeyId'), 'alias/unknown', 'left for the policy, then the registry, to refuse');
  });

  it('refuses other regions and accounts, malformed ARNs and aliases, and a missing id', () => {
    assert.equal(reasonOf(() => parseKeyReference(scope, 'arn:aws:kms:us-east-1:111122223333:key/k-1', 'KeyId')), 'KEY_NOT_FOUND');
    assert.equal(reasonOf(() => parseKeyReference(scope, 'arn:aws:kms:eu-west-1:999999999999:key/k-1', 'KeyId')), 'KEY_NOT_FOUND');
    assert.equal(reasonOf(() => parseKeyReference(scope, 'arn:aws:s3:::bucket', 'KeyId')), 'INVALID_ARN');
    assert.equal(reasonOf(() => parseKeyReference(scope, 'alias/with space', 'KeyId')), 'INVALID_ALIAS_NAME');
    assert.equal(reasonOf(() => parseKeyReference(scope, '', 'KeyId')), 'MISSING_KEY_ID');
    assert.equal(reasonOf(() => parseKeyReference(scope, 42, 'KeyId')), 'MISSING_KEY_ID');
    assert.equal(reasonOf(() => parseKeyReference(scope, 'x'.repeat(3000), 'KeyId')), 'INVALID_KEY_ID');
  });
});
