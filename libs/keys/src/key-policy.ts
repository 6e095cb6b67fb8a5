import { BrokerError, Code } from '@hsm-broker/errors';
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
