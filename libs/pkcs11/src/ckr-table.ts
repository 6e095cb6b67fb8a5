import { BrokerError, Code } from '@hsm-broker/errors';
import type { FailureClass } from '@hsm-broker/errors';

/** How the broker treats one PKCS#11 return value. */
export interface CkrEntry {
  /** The CKR_ constant's name, e.g. `CKR_DEVICE_ERROR`. */
  readonly name: string;
  readonly failureClass: FailureClass;
  /** The gRPC status a caller sees. */
  readonly code: Code;
  /** Whether the session must be re-opened (and re-logged-in) before the next call. */
  readonly resetsSession: boolean;
}

const appliance = (name: string, resetsSession = false): CkrEntry => ({
  name,
  failureClass: 'appliance',
  code: Code.UNAVAILABLE,
  resetsSession,
});
const caller = (name: string, code: Code = Code.INVALID_ARGUMENT): CkrEntry => ({
  name,
  failureClass: 'caller',
  code,
  resetsSession: false,
});
const internal = (name: string): CkrEntry => ({
  name,
  failureClass: 'internal',
  code: Code.INTERNAL,
  resetsSession: false,
});

/**
 * The one table translating PKCS#11 return codes. Appliance faults count
 * against an appliance (and trip its breaker); caller errors never do.
 * Internal entries are mistakes of the broker itself (a bad template), which
 * another appliance would repeat, so they are not appliance faults either.
 */
const ckrTable = new Map<number, CkrEntry>([
  [0x00000001, internal('CKR_CANCEL')],
  [0x00000002, appliance('CKR_HOST_MEMORY')],
  [0x00000003, appliance('CKR_SLOT_ID_INVALID', true)],
  // Unrecoverable by definition; SoftHSM also answers it once its token was re-initialised underneath.
  [0x00000005, appliance('CKR_GENERAL_ERROR', true)],
  [0x00000006, appliance('CKR_FUNCTION_FAILED')],
  [0x00000007, caller('CKR_ARGUMENTS_BAD')],
  [0x0000000a, appliance('CKR_CANT_LOCK')],
  [0x00000010, internal('CKR_ATTRIBUTE_READ_ONLY')],
  [0x00000011, internal('CKR_ATTRIBUTE_SENSITIVE')],
  [0x00000012, internal('CKR_ATTRIBUTE_TYPE_INVALID')],
  [0x00000013, internal('CKR_ATTRIBUTE_VALUE_INVALID')],
  [0x00000020, caller('CKR_DATA_INVALID')],
  [0x00000021, caller('CKR_DATA_LEN_RANGE')],
  [0x00000030, appliance('CKR_DEVICE_ERROR', true)],
  [0x00000031, appliance('CKR_DEVICE_MEMORY')],
  [0x00000032, appliance('CKR_DEVICE_REMOVED', true)],
  [0x00000040, caller('CKR_ENCRYPTED_DATA_INVALID')],
  [0x00000041, caller('CKR_ENCRYPTED_DATA_LEN_RANGE')],
  [0x00000050, appliance('CKR_FUNCTION_CANCELED')],
  [0x00000054, internal('CKR_FUNCTION_NOT_SUPPORTED')],
  [0x00000060, appliance('CKR_KEY_HANDLE_INVALID')],
  [0x00000062, caller('CKR_KEY_SIZE_RANGE')],
  [0x00000063, caller('CKR_KEY_TYPE_INCONSISTENT', Code.FAILED_PRECONDITION)],
  [0x00000068, caller('CKR_KEY_FUNCTION_NOT_PERMITTED', Code.FAILED_PRECONDITION)],
  [0x00000069, internal('CKR_KEY_NOT_WRAPPABLE')],
  [0x0000006a, internal('CKR_KEY_UNEXTRACTABLE')],
  [0x00000070, caller('CKR_MECHANISM_INVALID')],
  [0x00000071, caller('CKR_MECHANISM_PARAM_INVALID')],
  [0x00000082, appliance('CKR_OBJECT_HANDLE_INVALID')],
  [0x00000090, appliance('CKR_OPERATION_ACTIVE', true)],
  [0x00000091, appliance('CKR_OPERATION_NOT_INITIALIZED', true)],
  [0x000000a0, appliance('CKR_PIN_INCORRECT')],
  [0x000000a4, appliance('CKR_PIN_LOCKED')],
  [0x000000b0, appliance('CKR_SESSION_CLOSED', true)],
  [0x000000b1, appliance('CKR_SESSION_COUNT')],
  [0x000000b3, appliance('CKR_SESSION_HANDLE_INVALID', true)],
  [0x000000b5, appliance('CKR_SESSION_READ_ONLY', true)],
  [0x000000c0, caller('CKR_SIGNATURE_INVALID')],
  [0x000000c1, caller('CKR_SIGNATURE_LEN_RANGE')],
  [0x000000d0, internal('CKR_TEMPLATE_INCOMPLETE')],
  [0x000000d1, internal('CKR_TEMPLATE_INCONSISTENT')],
  [0x000000e0, appliance('CKR_TOKEN_NOT_PRESENT', true)],
  [0x000000e1, appliance('CKR_TOKEN_NOT_RECOGNIZED', true)],
  [0x000000e2, appliance('CKR_TOKEN_WRITE_PROTECTED')],
  [0x000000f0, internal('CKR_UNWRAPPING_KEY_HANDLE_INVALID')],
  [0x00000100, appliance('CKR_USER_ALREADY_LOGGED_IN')],
  [0x00000101, appliance('CKR_USER_NOT_LOGGED_IN', true)],
  [0x00000102, appliance('CKR_USER_PIN_NOT_INITIALIZED')],
  [0x00000110, caller('CKR_WRAPPED_KEY_INVALID')],
  [0x00000112, caller('CKR_WRAPPED_KEY_LEN_RANGE')],
  [0x00000113, internal('CKR_WRAPPING_KEY_HANDLE_INVALID')],
  [0x00000120, appliance('CKR_RANDOM_SEED_NOT_SUPPORTED')],
  [0x00000121, appliance('CKR_RANDOM_NO_RNG')],
  [0x00000150, caller('CKR_BUFFER_TOO_SMALL')],
  [0x00000190, appliance('CKR_CRYPTOKI_NOT_INITIALIZED', true)],
  [0x00000191, appliance('CKR_CRYPTOKI_ALREADY_INITIALIZED')],
]);

/**
 * Function-specific readings. SoftHSM reports a failed AES-GCM tag check in
 * C_Decrypt as CKR_GENERAL_ERROR; read generically that would make every
 * tampered ciphertext count against the appliance, so here it is the caller's.
 */
const functionOverrides = new Map<string, CkrEntry>([
  ['C_Decrypt:5', caller('CKR_GENERAL_ERROR')],
  ['C_Decrypt:6', caller('CKR_FUNCTION_FAILED')],
]);

const vendorDefined = 0x80000000;

/** Looks up how a return value from `fn` is treated. Unknown and vendor codes are appliance faults. */
export function lookupCkr(ckr: number, fn = ''): CkrEntry {
  const override = functionOverrides.get(`${fn}:${String(ckr)}`);
  if (override) return override;
  const entry = ckrTable.get(ckr);
  if (entry) return entry;
  const name =
    ckr >= vendorDefined
      ? `CKR_VENDOR_DEFINED+0x${(ckr - vendorDefined).toString(16)}`
      : `CKR_0x${ckr.toString(16)}`;
  return appliance(name, true);
}

/** Converts a PKCS#11 failure into a BrokerError that keeps the CKR name, number and function. */
export function translateCkr(ckr: number, fn: string, context = ''): BrokerError {
  const entry = lookupCkr(ckr, fn);
  const where = context ? ` (${context})` : '';
  return new BrokerError(entry.code, `${fn} failed with ${entry.name}${where}`, {
    reason: entry.name,
    failureClass: entry.failureClass,
    retryable: entry.failureClass === 'appliance',
    details: { ckr, ckrName: entry.name, function: fn, resetsSession: entry.resetsSession },
  });
}
