import type { KeyMaterialSpec } from '@hsm-broker/pkcs11';

/** What a key is for; fixed at creation. */
export type KeyUsage = 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' | 'GENERATE_VERIFY_MAC';

/** Lifecycle state. */
export type KeyState = 'ENABLED' | 'DISABLED' | 'PENDING_DELETION';

/** Signing algorithms, named as in the API. */
export type SigningAlgorithm =
  | 'ECDSA_SHA_256'
  | 'ECDSA_SHA_384'
  | 'RSASSA_PSS_SHA_256'
  | 'RSASSA_PSS_SHA_384'
  | 'RSASSA_PSS_SHA_512'
  | 'RSASSA_PKCS1_V1_5_SHA_256'
  | 'RSASSA_PKCS1_V1_5_SHA_384'
  | 'RSASSA_PKCS1_V1_5_SHA_512';

/** MAC algorithms, named as in the API. */
export type MacAlgorithm = 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512';

/** One version of a key. */
export interface KeyVersionRecord {
  version: number;
  createdAt: number;
  /** DER SubjectPublicKeyInfo for key pairs. */
  publicKey: Buffer | undefined;
  /** Appliances holding this version (verified replicas). */
  replicas: string[];
  /** When each replica was last verified (ms since epoch), by appliance id. */
  replicaVerifiedAt: Record<string, number>;
}

/** A key as the registry stores it. */
export interface KeyRecord {
  keyId: string;
  keySpec: KeyMaterialSpec;
  keyUsage: KeyUsage;
  keyState: KeyState;
  description: string;
  labels: Record<string, string>;
  createdAt: number;
  deletionTime: number | undefined;
  primaryVersion: number;
  versions: KeyVersionRecord[];
  /** Versions below this no longer decrypt or verify. */
  minDecryptionVersion: number;
  /** 0 when the key is not rotated automatically. */
  rotationPeriodDays: number;
  nextRotationTime: number | undefined;
}

/** Key-id syntax: 1–128 characters of [A-Za-z0-9/_.-]. */
export const keyIdPattern = /^[A-Za-z0-9/_.-]{1,128}$/;

/**
 * The label (and CKA_ID) of a key version's objects on every HSM. It carries
 * the key id and version, so the registry can be rebuilt from the HSMs.
 */
export function objectLabel(keyId: string, version: number): string {
  return `hsmb:${keyId}:${String(version)}`;
}

/** Reads a label made by {@link objectLabel}; undefined for objects that are not broker keys. */
export function parseObjectLabel(label: string): { keyId: string; version: number } | undefined {
  const match = /^hsmb:(.+):(\d+)$/.exec(label);
  if (!match?.[1] || !match[2]) return undefined;
  return { keyId: match[1], version: Number(match[2]) };
}

/** Label prefix of every broker key object. */
export const objectLabelPrefix = 'hsmb:';
