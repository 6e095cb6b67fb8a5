import { BrokerError, Code } from '@hsm-broker/errors';
import type { KeyMetadata, KeyServiceServer } from '@hsm-broker/proto';
import { KeySpec, KeyState, KeyUsage } from '@hsm-broker/proto';
import { invoke } from './kms-call.js';
import type { KmsOperation, KmsOperationDeps } from './kms-crypto-operations.js';
import { kmsReasons, kmsRefusal } from './kms-errors.js';
import { keyArn, resolveKeyId } from './kms-key-ids.js';
import type { ArnScope } from './kms-key-ids.js';
import { optionalInteger, optionalString, refuseMembers } from './kms-request-fields.js';
import type { KmsBody } from './kms-request-fields.js';
import { keySpecFromKms, keySpecToKms, keyUsageFromKms } from './kms-specs.js';

const kmsStates: Readonly<Record<number, string>> = {
  [KeyState.ENABLED]: 'Enabled',
  [KeyState.DISABLED]: 'Disabled',
  [KeyState.PENDING_DELETION]: 'PendingDeletion',
};
const seconds = (date: Date | undefined): number | undefined => (date === undefined ? undefined : date.getTime() / 1000);

/** The broker's key metadata in the KMS KeyMetadata shape. */
export function kmsKeyMetadata(scope: ArnScope, key: KeyMetadata): Record<string, unknown> {
  const spec = keySpecToKms(key.keySpec);
  const usage = KeyUsage[key.keyUsage];
  return {
    AWSAccountId: scope.account,
    KeyId: key.keyId,
    Arn: keyArn(scope, key.keyId),
    CreationDate: seconds(key.createdAt),
    Enabled: key.keyState === KeyState.ENABLED,
    Description: key.description,
    KeyUsage: usage,
    KeyState: kmsStates[key.keyState] ?? 'Unavailable',
    ...(key.deletionTime === undefined ? {} : { DeletionDate: seconds(key.deletionTime) }),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    KeySpec: spec,
    CustomerMasterKeySpec: spec,
    MultiRegion: false,
    ...(key.keySpec === KeySpec.AES_256 ? { EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] } : {}),
    ...(key.keySpec === KeySpec.HMAC_256 ? { MacAlgorithms: ['HMAC_SHA_256'] } : {}),
    ...(usage === 'SIGN_VERIFY'
      ? {
          SigningAlgorithms: key.keySpec === KeySpec.ECC_NIST_P256 ? ['ECDSA_SHA_256'] : key.keySpec === KeySpec.ECC_NIST_P384 ? ['ECDSA_SHA_384'] : [
            'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512', 'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512',
          ],
        }
      : {}),
  };
}

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new BrokerError(Code.INTERNAL, 'the key service answered without key metadata');
  return value;
}

/** Tags become labels (the broker's key/value annotations). */
function labelsOf(body: KmsBody): Record<string, string> {
  const tags = body['Tags'];
  if (tags === undefined || tags === null) return {};
  if (!Array.isArray(tags)) throw BrokerError.invalidArgument('Tags', 'must be a list of {TagKey, TagValue}', 'INVALID_FIELD');
  const labels: Record<string, string> = {};
  for (const tag of tags as unknown[]) {
    const { TagKey: key, TagValue: value } = (tag ?? {}) as Record<string, unknown>;
    if (typeof key !== 'string' || typeof value !== 'string') throw BrokerError.invalidArgument('Tags', 'every tag needs a string TagKey and TagValue', 'INVALID_FIELD');
    labels[key] = value;
  }
  return labels;
}

const unsupportedCreate = ['Policy', 'CustomKeyStoreId', 'XksKeyId', 'MultiRegion'];

/**
 * The KMS key-management operations, each the broker's KeyService handler
 * (key rotation settings are UpdateKeySettings, on-demand rotation is
 * RotateKey, rotation status is DescribeKey).
 */
export function kmsKeyOperations(keys: KeyServiceServer, deps: KmsOperationDeps): Record<string, KmsOperation> {
  const { scope, aliases } = deps;
  const keyIdOf = (body: KmsBody): string => resolveKeyId(scope, aliases, body['KeyId'], 'KeyId');
  const describe = async (body: KmsBody, caller: Parameters<KmsOperation>[1]): Promise<KeyMetadata> =>
    required((await invoke(keys.describeKey, () => ({ keyId: keyIdOf(body) }), caller)).keyMetadata);
  return {
    CreateKey: async (body, caller) => {
      const result = await invoke(keys.createKey, () => {
        refuseMembers(body, unsupportedCreate, (name) => kmsRefusal(Code.UNIMPLEMENTED, kmsReasons.unsupported, `${name}: not offered by this endpoint`));
        const origin = optionalString(body, 'Origin');
        if (origin !== undefined && origin !== 'AWS_KMS') throw kmsRefusal(Code.UNIMPLEMENTED, kmsReasons.unsupported, `Origin: ${origin} is not offered; keys are generated in the HSMs (AWS_KMS)`);
        const keySpec = keySpecFromKms(optionalString(body, 'KeySpec') ?? optionalString(body, 'CustomerMasterKeySpec') ?? 'SYMMETRIC_DEFAULT');
        const keyUsage = keyUsageFromKms(optionalString(body, 'KeyUsage'), keySpec);
        return { keyId: '', keySpec, keyUsage: KeyUsage[keyUsage], description: optionalString(body, 'Description') ?? '', labels: labelsOf(body), rotationPeriodDays: 0 };
      }, caller);
      return { KeyMetadata: kmsKeyMetadata(scope, required(result.keyMetadata)) };
    },
    DescribeKey: async (body, caller) => ({ KeyMetadata: kmsKeyMetadata(scope, await describe(body, caller)) }),
    ListKeys: async (body, caller) => {
      const result = await invoke(keys.listKeys, () => ({ pageSize: optionalInteger(body, 'Limit', 1, 1000) ?? 100, pageToken: optionalString(body, 'Marker') ?? '' }), caller);
      return {
        Keys: result.keys.map((key) => ({ KeyId: key.keyId, KeyArn: keyArn(scope, key.keyId) })),
        Truncated: result.nextPageToken !== '',
        ...(result.nextPageToken === '' ? {} : { NextMarker: result.nextPageToken }),
      };
    },
    EnableKey: async (body, caller) => {
      await invoke(keys.enableKey, () => ({ keyId: keyIdOf(body) }), caller);
      return {};
    },
    DisableKey: async (body, caller) => {
      await invoke(keys.disableKey, () => ({ keyId: keyIdOf(body) }), caller);
      return {};
    },
    ScheduleKeyDeletion: async (body, caller) => {
      const window = optionalInteger(body, 'PendingWindowInDays', 7, 30) ?? 30;
      const key = required((await invoke(keys.scheduleKeyDeletion, () => ({ keyId: keyIdOf(body), pendingWindowDays: window }), caller)).keyMetadata);
      return { KeyId: keyArn(scope, key.keyId), DeletionDate: seconds(key.deletionTime), KeyState: 'PendingDeletion', PendingWindowInDays: window };
    },
    CancelKeyDeletion: async (body, caller) => {
      const key = required((await invoke(keys.cancelKeyDeletion, () => ({ keyId: keyIdOf(body) }), caller)).keyMetadata);
      return { KeyId: keyArn(scope, key.keyId) };
    },
    EnableKeyRotation: async (body, caller) => {
      await invoke(keys.updateKeySettings, () => ({ keyId: keyIdOf(body), rotationPeriodDays: optionalInteger(body, 'RotationPeriodInDays', 90, 2560) ?? 365 }), caller);
      return {};
    },
    DisableKeyRotation: async (body, caller) => {
      await invoke(keys.updateKeySettings, () => ({ keyId: keyIdOf(body), rotationPeriodDays: 0 }), caller);
      return {};
    },
    GetKeyRotationStatus: async (body, caller) => {
      const key = await describe(body, caller);
      const enabled = key.rotationPeriodDays > 0;
      return {
        KeyId: keyArn(scope, key.keyId),
        KeyRotationEnabled: enabled,
        ...(enabled ? { RotationPeriodInDays: key.rotationPeriodDays } : {}),
        ...(enabled && key.nextRotationTime !== undefined ? { NextRotationDate: seconds(key.nextRotationTime) } : {}),
      };
    },
    RotateKeyOnDemand: async (body, caller) => {
      const key = required((await invoke(keys.rotateKey, () => ({ keyId: keyIdOf(body) }), caller)).keyMetadata);
      return { KeyId: keyArn(scope, key.keyId) };
    },
  };
}

