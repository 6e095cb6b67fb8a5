import { BrokerError, Code } from '@hsm-broker/errors';
import { signatureReasons } from './sigv4-verifier.js';

/** A KMS error as it goes on the wire: `__type`, HTTP status and message. */
export interface KmsErrorShape {
  type: string;
  status: number;
  message: string;
}

/** Reasons raised by the KMS front door itself. */
export const kmsReasons = {
  unknownOperation: 'UNKNOWN_OPERATION',
  unsupported: 'UNSUPPORTED_BY_KMS_ENDPOINT',
  serialization: 'KMS_SERIALIZATION',
  invalidArn: 'INVALID_ARN',
  invalidAlias: 'INVALID_ALIAS_NAME',
  incorrectKey: 'INCORRECT_KEY',
  signatureInvalid: 'KMS_INVALID_SIGNATURE',
  macInvalid: 'KMS_INVALID_MAC',
} as const;

/** Broker reasons whose KMS type is not the one their status code would give. */
const byReason: Readonly<Record<string, readonly [string, number]>> = {
  KEY_NOT_FOUND: ['NotFoundException', 400],
  KEY_DISABLED: ['DisabledException', 400],
  KEY_PENDING_DELETION: ['KMSInvalidStateException', 400],
  KEY_NOT_PENDING_DELETION: ['KMSInvalidStateException', 400],
  KEY_VERSION_RETIRED: ['KMSInvalidStateException', 400],
  NO_REPLICA: ['KMSInvalidStateException', 400],
  WRONG_KEY_USAGE: ['InvalidKeyUsageException', 400],
  INCOMPATIBLE_SIGNING_ALGORITHM: ['InvalidKeyUsageException', 400],
  INCOMPATIBLE_MAC_ALGORITHM: ['InvalidKeyUsageException', 400],
  NOT_ASYMMETRIC: ['UnsupportedOperationException', 400],
  INVALID_CIPHERTEXT: ['InvalidCiphertextException', 400],
  CIPHERTEXT_TOO_LARGE: ['InvalidCiphertextException', 400],
  ALIAS_EXISTS: ['AlreadyExistsException', 400],
  KEY_EXISTS: ['AlreadyExistsException', 400],
  ALIAS_NOT_FOUND: ['NotFoundException', 400],
  [kmsReasons.unknownOperation]: ['UnknownOperationException', 400],
  [kmsReasons.unsupported]: ['UnsupportedOperationException', 400],
  [kmsReasons.serialization]: ['SerializationException', 400],
  [kmsReasons.invalidArn]: ['InvalidArnException', 400],
  [kmsReasons.invalidAlias]: ['InvalidAliasNameException', 400],
  [kmsReasons.incorrectKey]: ['IncorrectKeyException', 400],
  [kmsReasons.signatureInvalid]: ['KMSInvalidSignatureException', 400],
  [kmsReasons.macInvalid]: ['KMSInvalidMacException', 400],
  [signatureReasons.missing]: ['MissingAuthenticationTokenException', 400],
  [signatureReasons.incomplete]: ['IncompleteSignatureException', 400],
  [signatureReasons.unknownKey]: ['UnrecognizedClientException', 400],
  [signatureReasons.invalid]: ['InvalidSignatureException', 400],
  [signatureReasons.expired]: ['InvalidSignatureException', 400],
  [signatureReasons.replayed]: ['InvalidSignatureException', 400],
};

/** The KMS type of every other failure, by status code. */
const byCode: Partial<Record<Code, readonly [string, number]>> = {
  [Code.INVALID_ARGUMENT]: ['ValidationException', 400],
  [Code.OUT_OF_RANGE]: ['ValidationException', 400],
  [Code.NOT_FOUND]: ['NotFoundException', 400],
  [Code.ALREADY_EXISTS]: ['AlreadyExistsException', 400],
  [Code.FAILED_PRECONDITION]: ['KMSInvalidStateException', 400],
  [Code.PERMISSION_DENIED]: ['AccessDeniedException', 400],
  [Code.UNAUTHENTICATED]: ['UnrecognizedClientException', 400],
  [Code.RESOURCE_EXHAUSTED]: ['ThrottlingException', 400],
  [Code.UNIMPLEMENTED]: ['UnsupportedOperationException', 400],
  [Code.DEADLINE_EXCEEDED]: ['DependencyTimeoutException', 503],
  [Code.UNAVAILABLE]: ['KMSInternalException', 500],
};

/**
 * Translates a broker failure into the KMS error shape an AWS SDK expects:
 * the reason when it has its own KMS type, else the status code. Internal
 * failures keep their message out of the answer (it is logged instead).
 */
export function kmsErrorOf(error: unknown): KmsErrorShape {
  const failure = BrokerError.from(error);
  const [type, status] = byReason[failure.reason] ?? byCode[failure.code] ?? (['KMSInternalException', 500] as const);
  const message = failure.code === Code.INTERNAL || failure.code === Code.UNKNOWN ? 'the broker could not complete the request' : failure.message;
  return { type, status, message };
}

/** A refusal raised by the KMS front door with its own reason. */
export function kmsRefusal(code: Code, reason: string, message: string): BrokerError {
  return new BrokerError(code, message, { reason });
}
