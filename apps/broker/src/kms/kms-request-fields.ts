import { BrokerError, quoteInput } from '@hsm-broker/errors';

/** A decoded KMS JSON request body. */
export type KmsBody = Readonly<Record<string, unknown>>;

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** An optional string member; a non-string is the caller's mistake and names the member. */
export function optionalString(body: KmsBody, name: string): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw BrokerError.invalidArgument(name, 'must be a string', 'INVALID_FIELD');
  return value;
}

/** A base64 blob member (KMS sends binary as base64 strings). */
export function blob(body: KmsBody, name: string, required = true): Buffer {
  const value = body[name];
  if (value === undefined || value === null) {
    if (required) throw BrokerError.invalidArgument(name, 'is required', 'MISSING_FIELD');
    return Buffer.alloc(0);
  }
  if (typeof value !== 'string' || !base64Pattern.test(value)) throw BrokerError.invalidArgument(name, 'must be a base64 string', 'INVALID_FIELD');
  if (required && value === '') throw BrokerError.invalidArgument(name, 'must not be empty', 'INVALID_FIELD');
  return Buffer.from(value, 'base64');
}

/** An optional integer member within a range. */
export function optionalInteger(body: KmsBody, name: string, min: number, max: number): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw BrokerError.invalidArgument(name, `must be an integer from ${String(min)} to ${String(max)}`, 'INVALID_FIELD');
  }
  return value;
}

/** An optional boolean member. */
export function optionalBoolean(body: KmsBody, name: string): boolean | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw BrokerError.invalidArgument(name, 'must be true or false', 'INVALID_FIELD');
  return value;
}

/** An encryption context: a JSON object of string values (absent means empty). */
export function contextMap(body: KmsBody, name: string): Record<string, string> {
  const value = body[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw BrokerError.invalidArgument(name, 'must be an object of string values', 'INVALID_CONTEXT');
  const context: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (typeof entry !== 'string') throw BrokerError.invalidArgument(name, `value of ${quoteInput(key)} must be a string`, 'INVALID_CONTEXT');
    context[key] = entry;
  }
  return context;
}

/** Members this endpoint does not implement; sending one is refused rather than silently ignored. */
export function refuseMembers(body: KmsBody, names: readonly string[], refuse: (name: string) => BrokerError): void {
  for (const name of names) {
    const value = body[name];
    if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0) && value !== false) throw refuse(name);
  }
}
