import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { aliasNamePattern } from '@hsm-broker/keys';
import type { AliasStore } from '@hsm-broker/keys';
import { kmsReasons, kmsRefusal } from './kms-errors.js';

/** How this endpoint names things: the region and account ARNs carry. */
export interface ArnScope {
  region: string;
  account: string;
}

/** A key's ARN, `arn:aws:kms:<region>:<account>:key/<id>`. */
export function keyArn(scope: ArnScope, keyId: string): string {
  return `arn:aws:kms:${scope.region}:${scope.account}:key/${keyId}`;
}

/** An alias's ARN, `arn:aws:kms:<region>:<account>:alias/<name>`. */
export function aliasArn(scope: ArnScope, aliasName: string): string {
  return `arn:aws:kms:${scope.region}:${scope.account}:${aliasName}`;
}

/** What a KMS `KeyId` parameter names, before aliases are looked up. */
export type KeyReference = { kind: 'key'; keyId: string } | { kind: 'alias'; aliasName: string };

const arnPattern = /^arn:aws:kms:([^:]*):([^:]*):(key|alias)\/(.+)$/;

/**
 * Reads a KMS key reference: a bare key id, a key ARN, an alias name
 * (`alias/…`) or an alias ARN. An ARN of another region or account is not
 * this endpoint's and is refused, as KMS refuses a key it does not hold.
 */
export function parseKeyReference(scope: ArnScope, value: unknown, field: string): KeyReference {
  if (typeof value !== 'string' || value === '') throw BrokerError.invalidArgument(field, 'is required: a key id, key ARN, alias name or alias ARN', 'MISSING_KEY_ID');
  if (value.length > 2048) throw BrokerError.invalidArgument(field, `is ${String(value.length)} characters; at most 2048`, 'INVALID_KEY_ID');
  if (value.startsWith('arn:')) {
    const match = arnPattern.exec(value);
    if (!match) throw kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.invalidArn, `${field}: ${quoteInput(value)} is not a KMS key or alias ARN`);
    const [, region, account, kind, rest = ''] = match;
    if (region !== scope.region || account !== scope.account) {
      throw new BrokerError(Code.NOT_FOUND, `${field}: ${quoteInput(value)} names region ${quoteInput(region ?? '')} and account ${quoteInput(account ?? '')}; this endpoint serves ${scope.region} and ${scope.account}`, {
        reason: 'KEY_NOT_FOUND',
      });
    }
    return kind === 'alias' ? { kind: 'alias', aliasName: checkAlias(`alias/${rest}`, field) } : { kind: 'key', keyId: rest };
  }
  if (value.startsWith('alias/')) return { kind: 'alias', aliasName: checkAlias(value, field) };
  return { kind: 'key', keyId: value };
}

/** Checks alias syntax (`alias/` then A-Z a-z 0-9 / _ -). */
export function checkAlias(value: string, field: string): string {
  if (!aliasNamePattern.test(value)) throw kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.invalidAlias, `${field}: ${quoteInput(value)} must be alias/ followed by 1-250 characters of A-Z a-z 0-9 / _ -`);
  return value;
}

/**
 * The broker key id a reference names. An alias that does not exist stays
 * as its name, so the handler's policy check judges it like any other key id
 * (a refusal must not reveal whether an alias exists) before the registry
 * answers NOT_FOUND.
 */
export function resolveKeyId(scope: ArnScope, aliases: AliasStore, value: unknown, field: string): string {
  const reference = parseKeyReference(scope, value, field);
  if (reference.kind === 'key') return reference.keyId;
  return aliases.getAlias(reference.aliasName)?.targetKeyId ?? reference.aliasName;
}
