import { BrokerError, Code } from '@hsm-broker/errors';
import { hashLength } from '@hsm-broker/pkcs11';
import type { HashName, KeyMaterialSpec, SignatureScheme } from '@hsm-broker/pkcs11';
import type { KeyUsage, MacAlgorithm, SigningAlgorithm } from './key-model.js';

const usagesBySpec: Record<KeyMaterialSpec, KeyUsage> = {
  AES_256: 'ENCRYPT_DECRYPT',
  HMAC_256: 'GENERATE_VERIFY_MAC',
  ECC_NIST_P256: 'SIGN_VERIFY',
  ECC_NIST_P384: 'SIGN_VERIFY',
  RSA_2048: 'SIGN_VERIFY',
  RSA_3072: 'SIGN_VERIFY',
  RSA_4096: 'SIGN_VERIFY',
};

/** Rejects spec/usage pairs the broker cannot honour (e.g. an AES key for signing). */
export function checkSpecUsage(spec: KeyMaterialSpec, usage: KeyUsage): void {
  if (usagesBySpec[spec] !== usage) {
    throw new BrokerError(Code.INVALID_ARGUMENT, `key_usage: ${usage} is not valid for key_spec ${spec} (use ${usagesBySpec[spec]})`, {
      reason: 'INCOMPATIBLE_KEY_USAGE',
      details: { field: 'key_usage' },
    });
  }
}

const rsaAlgorithms: SigningAlgorithm[] = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];

/** Signing algorithms a key spec supports (as AWS KMS pairs them). */
export function signingAlgorithmsFor(spec: KeyMaterialSpec): SigningAlgorithm[] {
  if (spec === 'ECC_NIST_P256') return ['ECDSA_SHA_256'];
  if (spec === 'ECC_NIST_P384') return ['ECDSA_SHA_384'];
  if (spec.startsWith('RSA_')) return rsaAlgorithms;
  return [];
}

/**
 * MAC algorithms a key spec supports. As in AWS KMS, an HMAC key's length
 * matches its hash (RFC 2104 keys shorter than the output weaken it; SoftHSM
 * refuses them with CKR_KEY_SIZE_RANGE).
 */
export function macAlgorithmsFor(spec: KeyMaterialSpec): MacAlgorithm[] {
  return spec === 'HMAC_256' ? ['HMAC_SHA_256'] : [];
}

/** How the HSM computes a signing algorithm. */
export function signatureParameters(algorithm: SigningAlgorithm): { scheme: SignatureScheme; hash: HashName } {
  const hash: HashName = algorithm.endsWith('256') ? 'sha256' : algorithm.endsWith('384') ? 'sha384' : 'sha512';
  const scheme: SignatureScheme = algorithm.startsWith('ECDSA')
    ? 'ecdsa'
    : algorithm.startsWith('RSASSA_PSS')
      ? 'rsa-pss'
      : 'rsa-pkcs1';
  return { scheme, hash };
}

/** The hash behind a MAC algorithm. */
export function macHash(algorithm: MacAlgorithm): HashName {
  return algorithm === 'HMAC_SHA_256' ? 'sha256' : algorithm === 'HMAC_SHA_384' ? 'sha384' : 'sha512';
}

/** Bytes of an RSA modulus, by key spec. */
const rsaModulusBytes: Partial<Record<KeyMaterialSpec, number>> = { RSA_2048: 256, RSA_3072: 384, RSA_4096: 512 };
/** Bytes of an EC field element (one of r, s), by key spec. */
const curveBytes: Partial<Record<KeyMaterialSpec, number>> = { ECC_NIST_P256: 32, ECC_NIST_P384: 48 };

/**
 * The longest signature a key spec can produce: the modulus length for RSA
 * (PKCS #1 signatures are exactly that long), and for ECDSA the DER
 * SEQUENCE of two INTEGERs at their longest (a leading zero on each, a
 * one-byte length for P-256 and P-384). A longer signature cannot verify, so
 * it is refused before it reaches an appliance.
 */
export function maxSignatureBytes(spec: KeyMaterialSpec): number {
  const modulus = rsaModulusBytes[spec];
  if (modulus !== undefined) return modulus;
  const field = curveBytes[spec];
  if (field !== undefined) return 2 + 2 * (2 + field + 1);
  return 0;
}

/** Output length of a MAC algorithm, in bytes: the only length a MAC from it can have. */
export function macBytes(algorithm: MacAlgorithm): number {
  return hashLength[macHash(algorithm)];
}
