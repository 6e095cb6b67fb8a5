import { randomUUID } from 'node:crypto';
import { BrokerError, quoteInput } from '@hsm-broker/errors';
import type { Fleet } from '@hsm-broker/fleet';
import type { KeyRecord, KeyRegistry, RegistryRebuild } from '@hsm-broker/keys';
import type { KeyServiceServer } from '@hsm-broker/proto';
import { keyMetadataOf as metadataOf, keySpecOf, keyUsageOf, requireKeyId } from './api-mapping.js';
import { keyStateOf, requestOptionsOf } from './call-facts.js';
import type { CallContext, CallPipeline } from './call-pipeline.js';
import { rebuildRegistryHandler } from './registry-rebuild-service.js';
import { unary } from './unary-handler.js';

const maxLabels = 50;
const labelKeyPattern = /^[A-Za-z0-9_.\-/]{1,63}$/;

function checkLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > maxLabels) throw BrokerError.invalidArgument('labels', `has ${String(entries.length)} entries; at most ${String(maxLabels)}`, 'TOO_MANY_LABELS');
  for (const [key, value] of entries) {
    if (!labelKeyPattern.test(key)) throw BrokerError.invalidArgument('labels', `key ${quoteInput(key)} must be 1-63 characters of A-Z a-z 0-9 _ . - /`, 'INVALID_LABEL');
    if (value.length > 256) throw BrokerError.invalidArgument('labels', `value of ${quoteInput(key)} is longer than 256 characters`, 'INVALID_LABEL');
  }
  return labels;
}

/** Runs a lifecycle change and notes the key's state before and after it for the audit trail. */
async function changing(registry: KeyRegistry, keyId: string, context: CallContext, change: () => Promise<KeyRecord>): Promise<KeyRecord> {
  try {
    context.facts.before = keyStateOf(registry.describeKey(keyId));
  } catch {
    // No such key: the change below refuses the call with the proper status.
  }
  const key = await change();
  context.facts.after = keyStateOf(key);
  return key;
}

/** KeyService: key lifecycle. */
export function keyService(registry: KeyRegistry, fleet: Fleet, enrolled: ReadonlySet<string>, pipeline: CallPipeline, rebuild: RegistryRebuild): KeyServiceServer {
  const { log, access } = pipeline;
  /** The request's key id, checked and authorized for this call. */
  const allowedKey = (keyId: string, context: CallContext): string => {
    const checked = requireKeyId(keyId);
    access.key(context, checked);
    return checked;
  };
  // Enrolled appliances can hold replicas; the others are not "missing" them.
  const keyMetadataOf = (key: Parameters<typeof metadataOf>[0]): ReturnType<typeof metadataOf> =>
    metadataOf(
      key,
      fleet.appliances.map((appliance) => appliance.id).filter((id) => enrolled.has(id)),
    );
  return {
    createKey: unary('CreateKey', pipeline, async (request, context) => {
      // A key created without a name gets one here, so that the policy judges the name it will have.
      const keyId = request.keyId === '' ? randomUUID() : request.keyId;
      access.key(context, keyId);
      const keySpec = keySpecOf(request.keySpec);
      const keyUsage = keyUsageOf(request.keyUsage);
      if (request.description.length > 8192) throw BrokerError.invalidArgument('description', 'is longer than 8192 characters', 'DESCRIPTION_TOO_LONG');
      const key = await registry.createKey(
        { keyId, keySpec, keyUsage, description: request.description, labels: checkLabels(request.labels), rotationPeriodDays: request.rotationPeriodDays },
        requestOptionsOf(context),
      );
      context.facts.after = keyStateOf(key);
      log.info('key created', { keyId: key.keyId, keySpec, replicas: key.versions[0]?.replicas.length ?? 0 });
      return { keyMetadata: keyMetadataOf(key) };
    }),
    describeKey: unary('DescribeKey', pipeline, (request, context) => ({ keyMetadata: keyMetadataOf(registry.describeKey(allowedKey(request.keyId, context))) })),
    listKeys: unary('ListKeys', pipeline, (request, context) => {
      if (request.pageSize < 0 || request.pageSize > 1000) {
        throw BrokerError.invalidArgument('page_size', `must be 0 to 1000, got ${String(request.pageSize)}`, 'INVALID_PAGE_SIZE');
      }
      // Pages hold only keys the caller may see, and the token names the last of them: a token never
      // carries, and paging never reveals, the id of a key the caller has no grant on.
      const size = request.pageSize === 0 ? 100 : request.pageSize;
      const shown: KeyRecord[] = [];
      let token = request.pageToken;
      let more = true;
      while (more && shown.length < size) {
        const page = registry.listKeys(size, token);
        for (const key of page.keys) {
          if (shown.length === size) break;
          if (access.visible(context, key.keyId)) shown.push(key);
        }
        token = page.nextPageToken;
        more = token !== '';
        if (shown.length === size) more = more || page.keys[page.keys.length - 1]?.keyId !== shown[shown.length - 1]?.keyId;
      }
      const last = shown[shown.length - 1];
      const nextPageToken = more && last ? Buffer.from(last.keyId, 'utf8').toString('base64url') : '';
      return { keys: shown.map(keyMetadataOf), nextPageToken };
    }),
    rotateKey: unary('RotateKey', pipeline, async (request, context) => {
      const keyId = allowedKey(request.keyId, context);
      const key = await changing(registry, keyId, context, () => registry.rotateKey(keyId, requestOptionsOf(context)));
      log.info('key rotated', { keyId: key.keyId, primaryVersion: key.primaryVersion });
      return { keyMetadata: keyMetadataOf(key) };
    }),
    enableKey: unary('EnableKey', pipeline, async (request, context) => {
      const keyId = allowedKey(request.keyId, context);
      return { keyMetadata: keyMetadataOf(await changing(registry, keyId, context, () => registry.enableKey(keyId))) };
    }),
    disableKey: unary('DisableKey', pipeline, async (request, context) => {
      const keyId = allowedKey(request.keyId, context);
      return { keyMetadata: keyMetadataOf(await changing(registry, keyId, context, () => registry.disableKey(keyId))) };
    }),
    scheduleKeyDeletion: unary('ScheduleKeyDeletion', pipeline, async (request, context) => {
      const keyId = allowedKey(request.keyId, context);
      const key = await changing(registry, keyId, context, () => registry.scheduleKeyDeletion(keyId, request.pendingWindowDays === 0 ? 30 : request.pendingWindowDays));
      log.info('key deletion scheduled', { keyId: key.keyId, deletionTime: key.deletionTime });
      return { keyMetadata: keyMetadataOf(key) };
    }),
    cancelKeyDeletion: unary('CancelKeyDeletion', pipeline, async (request, context) => {
      const keyId = allowedKey(request.keyId, context);
      return { keyMetadata: keyMetadataOf(await changing(registry, keyId, context, () => registry.cancelKeyDeletion(keyId))) };
    }),
    updateKeySettings: unary('UpdateKeySettings', pipeline, async (request, context) => {
      if (request.minDecryptionVersion === undefined && request.rotationPeriodDays === undefined) {
        throw BrokerError.invalidArgument('min_decryption_version', 'set min_decryption_version, rotation_period_days or both', 'NOTHING_TO_UPDATE');
      }
      const keyId = allowedKey(request.keyId, context);
      const key = await changing(registry, keyId, context, () =>
        registry.updateKeySettings(keyId, {
          minDecryptionVersion: request.minDecryptionVersion,
          rotationPeriodDays: request.rotationPeriodDays,
        }),
      );
      log.info('key settings updated', { keyId: key.keyId, minDecryptionVersion: key.minDecryptionVersion, rotationPeriodDays: key.rotationPeriodDays });
      return { keyMetadata: keyMetadataOf(key) };
    }),
    rebuildRegistry: rebuildRegistryHandler(rebuild, keyMetadataOf, pipeline),
  };
}
