import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { isReservedAlias } from '@hsm-broker/keys';
import type { KeyAlias, KeyRegistry } from '@hsm-broker/keys';
import type { CallPipeline } from '../call-pipeline.js';
import { unary } from '../unary-handler.js';
import { invoke } from './kms-call.js';
import type { KmsOperation, KmsOperationDeps } from './kms-crypto-operations.js';
import { kmsReasons, kmsRefusal } from './kms-errors.js';
import { aliasArn, checkAlias, parseKeyReference } from './kms-key-ids.js';
import { optionalInteger, optionalString } from './kms-request-fields.js';
import type { KmsBody } from './kms-request-fields.js';

interface AliasRequest {
  aliasName: string;
  targetKeyId: string;
}

interface ListAliasesRequest {
  keyId: string | undefined;
  limit: number;
  marker: string | undefined;
}

function aliasNameOf(body: KmsBody): string {
  const name = checkAlias(optionalString(body, 'AliasName') ?? '', 'AliasName');
  if (isReservedAlias(name)) throw kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.invalidAlias, `AliasName: ${quoteInput(name)} is in the reserved alias/aws/ space`);
  return name;
}

function targetOf(deps: KmsOperationDeps, body: KmsBody): string {
  const reference = parseKeyReference(deps.scope, body['TargetKeyId'], 'TargetKeyId');
  if (reference.kind === 'alias') throw BrokerError.invalidArgument('TargetKeyId', 'must name a key (id or key ARN), not an alias', 'INVALID_FIELD');
  return reference.keyId;
}

const notFound = (name: string): BrokerError =>
  new BrokerError(Code.NOT_FOUND, `AliasName: alias ${quoteInput(name)} does not exist`, { reason: 'ALIAS_NOT_FOUND', details: { field: 'AliasName' } });

/**
 * Alias operations. Aliases are new to the broker, so these are broker
 * operations of their own (CreateAlias, UpdateAlias, DeleteAlias,
 * ListAliases in the method catalog), run through the same call pipeline:
 * the policy judges the key an alias points to, quotas count them as key
 * administration, and the audit trail records them.
 */
export function kmsAliasOperations(registry: KeyRegistry, pipeline: CallPipeline, deps: KmsOperationDeps, clock: () => number = Date.now): Record<string, KmsOperation> {
  const { aliases, scope } = deps;
  const { access } = pipeline;
  const entryOf = (alias: KeyAlias): Record<string, unknown> => ({
    AliasName: alias.aliasName,
    AliasArn: aliasArn(scope, alias.aliasName),
    TargetKeyId: alias.targetKeyId,
    CreationDate: alias.createdAt / 1000,
    LastUpdatedDate: alias.updatedAt / 1000,
  });
  const createAlias = unary<AliasRequest, KeyAlias>('CreateAlias', pipeline, (request, context) => {
    access.key(context, request.targetKeyId);
    registry.describeKey(request.targetKeyId);
    return aliases.createAlias(request.aliasName, request.targetKeyId, clock());
  });
  const updateAlias = unary<AliasRequest, KeyAlias>('UpdateAlias', pipeline, (request, context) => {
    const current = aliases.getAlias(request.aliasName);
    // Moving an alias changes what both keys' users reach: the caller needs both.
    access.key(context, current?.targetKeyId ?? request.aliasName);
    access.key(context, request.targetKeyId);
    if (!current) throw notFound(request.aliasName);
    registry.describeKey(request.targetKeyId);
    return aliases.updateAlias(request.aliasName, request.targetKeyId, clock());
  });
  const deleteAlias = unary<AliasRequest, { deleted: boolean }>('DeleteAlias', pipeline, (request, context) => {
    const current = aliases.getAlias(request.aliasName);
    access.key(context, current?.targetKeyId ?? request.aliasName);
    if (!current || !aliases.deleteAlias(request.aliasName)) throw notFound(request.aliasName);
    return { deleted: true };
  });
  const listAliases = unary<ListAliasesRequest, { aliases: KeyAlias[]; nextMarker: string }>('ListAliases', pipeline, (request, context) => {
    if (request.keyId !== undefined) access.key(context, request.keyId);
    // Like ListKeys: only aliases of keys the caller may see, and the marker names the last one shown.
    const shown: KeyAlias[] = [];
    let after = request.marker;
    for (;;) {
      const page = aliases.listAliases(after, request.limit, request.keyId);
      for (const alias of page) {
        if (shown.length === request.limit) break;
        if (access.visible(context, alias.targetKeyId)) shown.push(alias);
      }
      const last = page[page.length - 1];
      if (shown.length === request.limit || page.length < request.limit || !last) {
        const more = shown.length === request.limit && aliases.listAliases(shown[shown.length - 1]?.aliasName, 1, request.keyId).length > 0;
        return { aliases: shown, nextMarker: more ? (shown[shown.length - 1]?.aliasName ?? '') : '' };
      }
      after = last.aliasName;
    }
  });
  return {
    CreateAlias: async (body, caller) => {
      await invoke(createAlias, () => ({ aliasName: aliasNameOf(body), targetKeyId: targetOf(deps, body) }), caller);
      return {};
    },
    UpdateAlias: async (body, caller) => {
      await invoke(updateAlias, () => ({ aliasName: aliasNameOf(body), targetKeyId: targetOf(deps, body) }), caller);
      return {};
    },
    DeleteAlias: async (body, caller) => {
      await invoke(deleteAlias, () => ({ aliasName: aliasNameOf(body), targetKeyId: '' }), caller);
      return {};
    },
    ListAliases: async (body, caller) => {
      const result = await invoke(listAliases, () => {
        const keyId = body['KeyId'] === undefined || body['KeyId'] === null ? undefined : parseKeyReference(scope, body['KeyId'], 'KeyId');
        if (keyId?.kind === 'alias') throw BrokerError.invalidArgument('KeyId', 'must name a key (id or key ARN), not an alias', 'INVALID_FIELD');
        return { keyId: keyId?.keyId, limit: optionalInteger(body, 'Limit', 1, 100) ?? 50, marker: optionalString(body, 'Marker') };
      }, caller);
      return {
        Aliases: result.aliases.map(entryOf),
        Truncated: result.nextMarker !== '',
        ...(result.nextMarker === '' ? {} : { NextMarker: result.nextMarker }),
      };
    },
  };
}
