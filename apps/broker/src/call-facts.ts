import { parseCiphertext } from '@hsm-broker/keys';
import type { KeyRecord } from '@hsm-broker/keys';
import type { CallContext } from './call-pipeline.js';

/** Longest key id the trail keeps; a longer one (hostile input) is cut and marked. */
const maxRecordedKeyId = 256;

function recordedKeyId(value: string): string {
  return value.length <= maxRecordedKeyId ? value : `${value.slice(0, maxRecordedKeyId)}…(${String(value.length)} characters)`;
}

function field(value: unknown, name: string): unknown {
  return value && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined;
}

/**
 * Per-request options for the registry that also tell the call's facts
 * which appliances served it (failover and hedged attempts included).
 */
export function requestOptionsOf(context: CallContext): { deadline: number; onAttempt: (applianceId: string) => void } {
  return { deadline: context.deadline, onAttempt: (applianceId) => context.facts.appliances.push(applianceId) };
}

/**
 * Notes which key a request names, before it is admitted, so refused calls
 * are recorded with it too: `key_id`, or the key a ciphertext header names.
 * Only identifiers are read, never the payload.
 */
export function noteRequestKey(context: CallContext, request: unknown): void {
  const { facts } = context;
  const keyId = field(request, 'keyId');
  if (facts.keyId === undefined && typeof keyId === 'string' && keyId !== '') facts.keyId = recordedKeyId(keyId);
  const ciphertext = field(request, 'ciphertext');
  if (facts.keyId === undefined && Buffer.isBuffer(ciphertext)) {
    try {
      const parsed = parseCiphertext(ciphertext);
      facts.keyId = recordedKeyId(parsed.keyId);
      facts.keyVersion = parsed.keyVersion;
    } catch {
      // Not a broker ciphertext: the call will be refused and recorded without a key.
    }
  }
  const keyVersion = field(request, 'keyVersion');
  if (facts.keyVersion === undefined && typeof keyVersion === 'number' && keyVersion > 0) facts.keyVersion = keyVersion;
}

/** Notes the key and version a successful response names (the primary version an Encrypt used, ...). */
export function noteResponseKey(context: CallContext, response: unknown): void {
  const { facts } = context;
  const keyId = field(response, 'keyId') ?? field(field(response, 'keyMetadata'), 'keyId');
  const keyVersion = field(response, 'keyVersion');
  if (typeof keyId === 'string' && keyId !== '') facts.keyId = recordedKeyId(keyId);
  if (typeof keyVersion === 'number' && keyVersion > 0) facts.keyVersion = keyVersion;
}

/** The parts of a key's state that lifecycle calls change, for before/after records. */
export function keyStateOf(key: KeyRecord): Record<string, unknown> {
  return {
    keyState: key.keyState,
    primaryVersion: key.primaryVersion,
    minDecryptionVersion: key.minDecryptionVersion,
    rotationPeriodDays: key.rotationPeriodDays,
    ...(key.deletionTime === undefined ? {} : { deletionTime: new Date(key.deletionTime).toISOString() }),
  };
}
