import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { KeySpec, MacAlgorithm, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { kmsReasons } from './kms-errors.js';

function unsupported(field: string, value: string, what: string): BrokerError {
  return new BrokerError(Code.UNIMPLEMENTED, `${field}: ${quoteInput(value)} is a KMS ${what} this broker does not offer`, { reason: kmsReasons.unsupported });
}

/** KMS key specs this broker has, and the broker spec each one is. */
const keySpecs: Readonly<Record<string, KeySpec>> = {
  SYMMETRIC_DEFAULT: KeySpec.AES_256,
  HMAC_256: KeySpec.HMAC_256,
  ECC_NIST_P256: KeySpec.ECC_NIST_P256,
  ECC_NIST_P384: KeySpec.ECC_NIST_P384,
  RSA_2048: KeySpec.RSA_2048,
  RSA_3072: KeySpec.RSA_3072,
  RSA_4096: KeySpec.RSA_4096,
};
/** KMS key specs that exist there but not here. */
const otherKmsKeySpecs = new Set(['HMAC_224', 'HMAC_384', 'HMAC_512', 'ECC_NIST_P521', 'ECC_SECG_P256K1', 'ECC_NIST_EDWARDS25519', 'SM2', 'ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87']);

/** A KMS KeySpec → the broker's; a KMS spec we lack is UnsupportedOperationException, anything else ValidationException. */
export function keySpecFromKms(value: string, field = 'KeySpec'): KeySpec {
  const spec = keySpecs[value];
  if (spec !== undefined) return spec;
  if (otherKmsKeySpecs.has(value)) throw unsupported(field, value, 'key spec');
  throw BrokerError.invalidArgument(field, `${quoteInput(value)} is not a KMS key spec; use one of ${Object.keys(keySpecs).join(', ')}`, 'INVALID_ENUM_VALUE');
}

/** The broker's key spec → the KMS name. */
export function keySpecToKms(spec: KeySpec): string {
  return spec === KeySpec.AES_256 ? 'SYMMETRIC_DEFAULT' : KeySpec[spec];
}

/** KMS key usages; KEY_AGREEMENT is KMS's and not ours. */
export function keyUsageFromKms(value: string | undefined, spec: KeySpec): 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' | 'GENERATE_VERIFY_MAC' {
  if (value === undefined) return spec === KeySpec.HMAC_256 ? 'GENERATE_VERIFY_MAC' : spec === KeySpec.AES_256 ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY';
  if (value === 'ENCRYPT_DECRYPT' || value === 'SIGN_VERIFY' || value === 'GENERATE_VERIFY_MAC') return value;
  if (value === 'KEY_AGREEMENT') throw unsupported('KeyUsage', value, 'key usage');
  throw BrokerError.invalidArgument('KeyUsage', `${quoteInput(value)} is not a KMS key usage; use ENCRYPT_DECRYPT, SIGN_VERIFY or GENERATE_VERIFY_MAC`, 'INVALID_ENUM_VALUE');
}

const kmsOnlySigning = new Set(['ECDSA_SHA_512', 'SM2DSA', 'ED25519_SHA_512', 'ED25519_PH_SHA_512', 'ML_DSA_SHAKE_256']);

/** A KMS SigningAlgorithm → the broker's (same names where both have it). */
export function signingAlgorithmFromKms(value: unknown): SigningAlgorithm {
  if (typeof value !== 'string' || value === '') throw BrokerError.invalidArgument('SigningAlgorithm', 'is required', 'MISSING_FIELD');
  const algorithm = (SigningAlgorithm as unknown as Record<string, number>)[value];
  if (algorithm !== undefined && algorithm > 0) return algorithm;
  if (kmsOnlySigning.has(value)) throw unsupported('SigningAlgorithm', value, 'signing algorithm');
  throw BrokerError.invalidArgument('SigningAlgorithm', `${quoteInput(value)} is not a KMS signing algorithm`, 'INVALID_ENUM_VALUE');
}

/** A KMS MacAlgorithm → the broker's. */
export function macAlgorithmFromKms(value: unknown): MacAlgorithm {
  if (typeof value !== 'string' || value === '') throw BrokerError.invalidArgument('MacAlgorithm', 'is required', 'MISSING_FIELD');
  const algorithm = (MacAlgorithm as unknown as Record<string, number>)[value];
  if (algorithm !== undefined && algorithm > 0) return algorithm;
  if (value === 'HMAC_SHA_224') throw unsupported('MacAlgorithm', value, 'MAC algorithm');
  throw BrokerError.invalidArgument('MacAlgorithm', `${quoteInput(value)} is not a KMS MAC algorithm`, 'INVALID_ENUM_VALUE');
}

/** A KMS MessageType (RAW by default) → the broker's. */
export function messageTypeFromKms(value: string | undefined): MessageType {
  if (value === undefined || value === 'RAW') return MessageType.RAW;
  if (value === 'DIGEST') return MessageType.DIGEST;
  if (value === 'EXTERNAL_MU') throw unsupported('MessageType', value, 'message type');
  throw BrokerError.invalidArgument('MessageType', `${quoteInput(value)} is not RAW or DIGEST`, 'INVALID_ENUM_VALUE');
}

/** The only encryption algorithm of symmetric keys here: AES-256-GCM, which KMS calls SYMMETRIC_DEFAULT. */
export function checkEncryptionAlgorithm(value: string | undefined, field = 'EncryptionAlgorithm'): void {
  if (value === undefined || value === 'SYMMETRIC_DEFAULT') return;
  if (['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'].includes(value)) throw unsupported(field, value, 'encryption algorithm');
  throw BrokerError.invalidArgument(field, `${quoteInput(value)} is not a KMS encryption algorithm`, 'INVALID_ENUM_VALUE');
}
