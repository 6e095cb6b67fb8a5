import { BrokerError } from '@hsm-broker/errors';
import type { KeyRecord, KeyUsage as DomainKeyUsage, MacAlgorithm as DomainMac, MessageType as DomainMessageType, SigningAlgorithm as DomainSigning } from '@hsm-broker/keys';
import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';
import { DataKeySpec, KeySpec, KeyState, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import type { KeyMetadata } from '@hsm-broker/proto';

type EnumObject = Record<string, string | number>;

/**
 * Reads a proto enum value as its short name (KeySpec.AES_256 → 'AES_256').
 * UNSPECIFIED, and numbers the schema does not define, are the caller's
 * mistake and name the field.
 */
function enumName(enumObject: EnumObject, value: number, field: string): string {
  const name = enumObject[value];
  if (typeof name !== 'string' || name === 'UNSPECIFIED' || name === 'UNRECOGNIZED') {
    const allowed = Object.keys(enumObject).filter((key) => Number.isNaN(Number(key)) && key !== 'UNSPECIFIED' && key !== 'UNRECOGNIZED');
    throw BrokerError.invalidArgument(field, `${String(value)} is not a valid value; use one of ${allowed.join(', ')}`, 'INVALID_ENUM_VALUE');
  }
  return name;
}

/** Proto KeySpec → key material spec. */
export function keySpecOf(value: KeySpec, field = 'key_spec'): KeyMaterialSpec {
  return enumName(KeySpec, value, field) as KeyMaterialSpec;
}

/** Proto KeyUsage → domain usage. */
export function keyUsageOf(value: KeyUsage): DomainKeyUsage {
  return enumName(KeyUsage, value, 'key_usage') as DomainKeyUsage;
}

/** Proto SigningAlgorithm → domain algorithm. */
export function signingAlgorithmOf(value: SigningAlgorithm): DomainSigning {
  return enumName(SigningAlgorithm, value, 'signing_algorithm') as DomainSigning;
}

/** Domain algorithm → proto SigningAlgorithm. */
export function signingAlgorithmToProto(value: DomainSigning): SigningAlgorithm {
  return SigningAlgorithm[value];
}

/** Proto MacAlgorithm → domain algorithm. */
export function macAlgorithmOf(value: MacAlgorithm): DomainMac {
  return enumName(MacAlgorithm, value, 'mac_algorithm') as DomainMac;
}

/** Proto MessageType → domain message type. */
export function messageTypeOf(value: MessageType): DomainMessageType {
  return enumName(MessageType, value, 'message_type') as DomainMessageType;
}

/** Proto DataKeySpec → key length in bytes. */
export function dataKeyLength(value: DataKeySpec): 16 | 32 {
  return enumName(DataKeySpec, value, 'key_spec') === 'AES_128' ? 16 : 32;
}

/** Most entries an encryption context may have. */
export const maxContextEntries = 64;
/** Most bytes (keys and values, UTF-8) an encryption context may hold. */
export const maxContextBytes = 8192;

/** Checks an encryption context's size; its content is the caller's business. */
export function checkContext(context: Record<string, string>, field: string): Record<string, string> {
  const entries = Object.entries(context);
  if (entries.length > maxContextEntries) {
    throw BrokerError.invalidArgument(field, `has ${String(entries.length)} entries; at most ${String(maxContextEntries)} are allowed`, 'CONTEXT_TOO_LARGE');
  }
  let bytes = 0;
  for (const [key, value] of entries) {
    if (key.length === 0) throw BrokerError.invalidArgument(field, 'keys must not be empty', 'INVALID_CONTEXT');
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (bytes > maxContextBytes) {
    throw BrokerError.invalidArgument(field, `is ${String(bytes)} bytes; at most ${String(maxContextBytes)} are allowed`, 'CONTEXT_TOO_LARGE');
  }
  return context;
}

/** Checks that a required key id is present. */
export function requireKeyId(value: string, field = 'key_id'): string {
  if (value === '') throw BrokerError.invalidArgument(field, 'is required', 'MISSING_KEY_ID');
  return value;
}

/** Domain key → proto KeyMetadata. `applianceIds` are the enrolled appliances, which should hold every version. */
export function keyMetadataOf(key: KeyRecord, applianceIds: readonly string[]): KeyMetadata {
  const primary = key.versions.find((version) => version.version === key.primaryVersion);
  return {
    keyId: key.keyId,
    keySpec: KeySpec[key.keySpec],
    keyUsage: KeyUsage[key.keyUsage],
    keyState: KeyState[key.keyState],
    primaryVersion: key.primaryVersion,
    versions: key.versions.map((version) => ({
      version: version.version,
      createdAt: new Date(version.createdAt),
      replicas: version.replicas.map((applianceId) => ({
        applianceId,
        verifiedAt: new Date(version.replicaVerifiedAt[applianceId] ?? version.createdAt),
      })),
      missingReplicas: applianceIds.filter((id) => !version.replicas.includes(id)),
    })),
    description: key.description,
    labels: key.labels,
    createdAt: new Date(key.createdAt),
    deletionTime: key.deletionTime === undefined ? undefined : new Date(key.deletionTime),
    replicas: primary?.replicas ?? [],
    minDecryptionVersion: key.minDecryptionVersion,
    rotationPeriodDays: key.rotationPeriodDays,
    nextRotationTime: key.nextRotationTime === undefined ? undefined : new Date(key.nextRotationTime),
  };
}
