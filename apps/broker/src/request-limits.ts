import { BrokerError, Code } from '@hsm-broker/errors';
import { maxCiphertextBytes, maxPlaintextBytes, maxRawMessageBytes } from '@hsm-broker/keys';
import { checkContext, maxContextBytes, maxContextEntries } from './api-mapping.js';

/** Receive limits an operator may tune (the `limits:` section of HSMB_CONFIG). */
export interface ReceiveLimits {
  /** Largest backup RestoreBackup takes; also sets the transport's largest message. */
  maxBackupBytes: number;
  /** HTTP/2 streams (calls) one connection may have open at once. */
  maxConcurrentStreams: number;
  /** Custom metadata (headers) of one call: total bytes of names and values. */
  maxMetadataBytes: number;
  /** Custom metadata (headers) of one call: number of entries. */
  maxMetadataEntries: number;
}

/** Defaults; see the README's "Limits" section for why each is what it is. */
export const defaultReceiveLimits: ReceiveLimits = {
  maxBackupBytes: 256 * 1024 * 1024,
  maxConcurrentStreams: 100,
  maxMetadataBytes: 16 * 1024,
  maxMetadataEntries: 64,
};

/** Longest key id in bytes: the key-id syntax allows 128 ASCII characters. */
export const maxKeyIdBytes = 128;
/** Longest ListKeys page token: the base64url form of the longest key id. */
export const maxPageTokenBytes = Math.ceil((maxKeyIdBytes * 4) / 3);
/** Longest appliance id or zone name accepted in a request. */
export const maxFleetNameBytes = 128;
/** Longest signature any key spec makes (an RSA-4096 signature). */
export const maxAnySignatureBytes = 512;
/** Longest MAC any algorithm makes (HMAC-SHA-512). */
export const maxAnyMacBytes = 64;
/** Longest key description, in characters (checked again by CreateKey). */
const maxDescriptionCharacters = 8192;
/** Labels on one key, and their key and value lengths (checked by CreateKey). */
const labelBytes = 50 * (63 + 4 * 256 + 16);

/** One bounded field of a request. */
export interface FieldLimit {
  /** Field name as in the proto. */
  field: string;
  /** Field number in the proto (checked against the proto by a unit test). */
  number: number;
  maxBytes: number;
  /** Stable reason of the refusal. */
  reason: string;
}

/** The limits of one RPC method. */
export interface MethodLimits {
  fields: FieldLimit[];
  /** Encryption-context map fields, each bounded like every encryption context. */
  contexts: { field: string; number: number }[];
  /** Largest serialized request; anything longer is refused before it is decoded. */
  maxMessageBytes: number;
  /** For a batch method: its repeated `items` field, how many it may hold, and the unary method each item is. */
  batch?: BatchLimits;
}

/** The item list of a batch request. */
export interface BatchLimits {
  field: string;
  number: number;
  maxItems: number;
  /** The unary method an item is checked, authorized, charged and audited as. */
  itemMethod: string;
}

/** Items one batch request may carry (as Vault Transit's batch_input, bounded). */
export const maxBatchItems = 1000;
/**
 * Largest serialized batch request. 1000 Encrypt items of 64 KiB would be
 * 64 MiB; this cap keeps one call's memory bounded while a batch of the
 * largest items still fits (the caller splits beyond it).
 */
export const maxBatchBytes = 64 * 1024 * 1024;
/** Longest request_id of a SignStream request. */
export const maxStreamRequestIdBytes = 64;

/**
 * A batch of `itemMethod` requests: bounded by the item count and by bytes,
 * never by an item's own fields, so an oversized item fails alone.
 */
function batchOf(item: MethodLimits, itemMethod: string): MethodLimits {
  // Each item costs its own bytes plus its tag and length prefix in the list.
  return {
    fields: [],
    contexts: [],
    maxMessageBytes: Math.min(maxBatchBytes, maxBatchItems * (item.maxMessageBytes + 6)),
    batch: { field: 'items', number: 1, maxItems: maxBatchItems, itemMethod },
  };
}

const keyId = (number: number, field = 'key_id'): FieldLimit => ({ field, number, maxBytes: maxKeyIdBytes, reason: 'KEY_ID_TOO_LONG' });
const message = (number: number): FieldLimit => ({ field: 'message', number, maxBytes: maxRawMessageBytes, reason: 'MESSAGE_TOO_LARGE' });
const appliance = (number: number): FieldLimit => ({ field: 'appliance_id', number, maxBytes: maxFleetNameBytes, reason: 'APPLIANCE_ID_TOO_LONG' });
const context = (number: number, field = 'encryption_context'): { field: string; number: number } => ({ field, number });

/** Bytes a serialized map entry may add beyond its key and value (tags and lengths). */
const mapEntryOverhead = 12;
const contextBytes = maxContextBytes + maxContextEntries * mapEntryOverhead;

function method(fields: FieldLimit[], contexts: { field: string; number: number }[] = [], extraBytes = 0): MethodLimits {
  // Each field costs its tag and length prefix (at most 6 bytes for these sizes) besides its content.
  const fieldBytes = fields.reduce((sum, limit) => sum + limit.maxBytes + 6, 0);
  // 64 bytes more cover the enums and integers every request may carry.
  return { fields, contexts, maxMessageBytes: fieldBytes + contexts.length * contextBytes + extraBytes + 64 };
}

/**
 * Every RPC's limits, derived from what the API can use: a ciphertext is at
 * most what Encrypt makes (libs/keys `maxCiphertextBytes`), a plaintext what
 * Encrypt takes, a signature what the largest key spec makes, and so on.
 * Methods not listed get {@link fallbackLimits}.
 */
export function methodLimits(limits: ReceiveLimits): Readonly<Record<string, MethodLimits>> {
  const ciphertext: FieldLimit = { field: 'ciphertext', number: 1, maxBytes: maxCiphertextBytes, reason: 'CIPHERTEXT_TOO_LARGE' };
  const unary = unaryLimits(ciphertext, limits);
  const at = (name: string): MethodLimits => unary[name] ?? fallbackLimits;
  return {
    ...unary,
    BatchEncrypt: batchOf(at('Encrypt'), 'Encrypt'),
    BatchDecrypt: batchOf(at('Decrypt'), 'Decrypt'),
    BatchSign: batchOf(at('Sign'), 'Sign'),
    BatchVerify: batchOf(at('Verify'), 'Verify'),
    BatchGenerateMac: batchOf(at('GenerateMac'), 'GenerateMac'),
    // One stream message: a request id and a Sign request, whose own fields are checked per item.
    SignStream: { fields: [], contexts: [], maxMessageBytes: maxStreamRequestIdBytes + at('Sign').maxMessageBytes + 12 },
  };
}

function unaryLimits(ciphertext: FieldLimit, limits: ReceiveLimits): Record<string, MethodLimits> {
  return {
    Encrypt: method([keyId(1), { field: 'plaintext', number: 2, maxBytes: maxPlaintextBytes, reason: 'PLAINTEXT_TOO_LARGE' }], [context(3)]),
    Decrypt: method([ciphertext], [context(2)]),
    ReEncrypt: method([ciphertext, keyId(3, 'destination_key_id')], [context(2, 'source_encryption_context'), context(4, 'destination_encryption_context')]),
    GenerateDataKey: method([keyId(1)], [context(3)]),
    GenerateDataKeyWithoutPlaintext: method([keyId(1)], [context(3)]),
    Sign: method([keyId(1), message(2)]),
    Verify: method([keyId(1), message(3), { field: 'signature', number: 5, maxBytes: maxAnySignatureBytes, reason: 'SIGNATURE_TOO_LARGE' }]),
    GetPublicKey: method([keyId(1)]),
    GenerateMac: method([keyId(1), message(2)]),
    VerifyMac: method([keyId(1), message(3), { field: 'mac', number: 4, maxBytes: maxAnyMacBytes, reason: 'MAC_TOO_LARGE' }]),
    GenerateRandom: method([]),
    CreateKey: method([keyId(1), { field: 'description', number: 4, maxBytes: 4 * maxDescriptionCharacters, reason: 'DESCRIPTION_TOO_LONG' }], [], labelBytes),
    DescribeKey: method([keyId(1)]),
    ListKeys: method([{ field: 'page_token', number: 2, maxBytes: maxPageTokenBytes, reason: 'INVALID_PAGE_TOKEN' }]),
    RotateKey: method([keyId(1)]),
    EnableKey: method([keyId(1)]),
    DisableKey: method([keyId(1)]),
    ScheduleKeyDeletion: method([keyId(1)]),
    CancelKeyDeletion: method([keyId(1)]),
    UpdateKeySettings: method([keyId(1)]),
    RebuildRegistry: method([]),
    GetFleetStatus: method([]),
    DrainAppliance: method([appliance(1)]),
    UndrainAppliance: method([appliance(1)]),
    FenceZone: method([{ field: 'zone', number: 1, maxBytes: maxFleetNameBytes, reason: 'ZONE_TOO_LONG' }]),
    UnfenceZone: method([{ field: 'zone', number: 1, maxBytes: maxFleetNameBytes, reason: 'ZONE_TOO_LONG' }]),
    InjectFault: method([appliance(1)]),
    ClearFaults: method([appliance(1)]),
    ResyncKeys: method([appliance(1)]),
    CreateBackup: method([]),
    RestoreBackup: method([{ field: 'backup', number: 1, maxBytes: limits.maxBackupBytes, reason: 'BACKUP_TOO_LARGE' }]),
    // An audit filter names an identity, an operation and a key id: 1 KiB holds the longest of each.
    SearchAudit: method([{ field: 'filter', number: 1, maxBytes: 1024, reason: 'FILTER_TOO_LARGE' }]),
    TailAudit: method([{ field: 'filter', number: 1, maxBytes: 1024, reason: 'FILTER_TOO_LARGE' }]),
    GetAuditStatus: method([]),
  };
}

/** Limits of a method the table does not list: small requests, no field checks. */
export const fallbackLimits: MethodLimits = { fields: [], contexts: [], maxMessageBytes: 64 * 1024 };

/** The refusal of a field longer than its limit. The message gives sizes, never the content. */
export function fieldTooLarge(limit: FieldLimit, bytes: number): BrokerError {
  return new BrokerError(Code.INVALID_ARGUMENT, `${limit.field}: is ${String(bytes)} bytes; at most ${String(limit.maxBytes)} are allowed`, {
    reason: limit.reason,
    details: { field: limit.field, bytes, maxBytes: limit.maxBytes },
  });
}

function camelCase(field: string): string {
  return field.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

function sizeOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (value instanceof Uint8Array) return value.length;
  return 0;
}

/**
 * Checks a decoded request against its method's limits; throws the
 * BrokerError naming the first field over its limit.
 */
export function checkRequestLimits(limits: MethodLimits, request: unknown): void {
  if (typeof request !== 'object' || request === null) return;
  const fields = request as Record<string, unknown>;
  if (limits.batch) {
    const { field, maxItems } = limits.batch;
    const items = fields[camelCase(field)];
    const count = Array.isArray(items) ? items.length : 0;
    if (count > maxItems) {
      throw new BrokerError(Code.INVALID_ARGUMENT, `${field}: has ${String(count)} items; at most ${String(maxItems)} are allowed`, {
        reason: 'TOO_MANY_ITEMS',
        details: { field, items: count, maxItems },
      });
    }
    if (count === 0) throw BrokerError.invalidArgument(field, 'must hold at least one item', 'NO_ITEMS');
  }
  for (const limit of limits.fields) {
    const bytes = sizeOf(fields[camelCase(limit.field)]);
    if (bytes > limit.maxBytes) throw fieldTooLarge(limit, bytes);
  }
  for (const { field } of limits.contexts) {
    const value = fields[camelCase(field)];
    if (typeof value === 'object' && value !== null) checkContext(value as Record<string, string>, field);
  }
}
