import { Code, codeName } from './status-code.js';

/**
 * Whose fault a failure is. Only `appliance` failures count against an
 * appliance's health; a caller's mistake must never take an HSM out of
 * rotation, however often it is repeated.
 */
export type FailureClass = 'caller' | 'appliance' | 'overload' | 'deadline' | 'internal';

/** Options for {@link BrokerError}. */
export interface BrokerErrorOptions {
  /** Stable, machine-readable reason in UPPER_SNAKE_CASE, e.g. `KEY_DISABLED`. */
  reason?: string;
  /** Structured facts about the failure. Never plaintext, key material or PINs. */
  details?: Record<string, string | number | boolean>;
  cause?: unknown;
  /** Whether the same request may succeed when tried again (elsewhere or later). */
  retryable?: boolean;
  failureClass?: FailureClass;
}

/** The JSON form of a {@link BrokerError}, used to carry it between processes. */
export interface SerializedBrokerError {
  code: Code;
  message: string;
  reason: string;
  details: Record<string, string | number | boolean>;
  retryable: boolean;
  failureClass: FailureClass;
}

const defaultClass: Partial<Record<Code, FailureClass>> = {
  [Code.INVALID_ARGUMENT]: 'caller',
  [Code.NOT_FOUND]: 'caller',
  [Code.ALREADY_EXISTS]: 'caller',
  [Code.FAILED_PRECONDITION]: 'caller',
  [Code.PERMISSION_DENIED]: 'caller',
  [Code.UNAUTHENTICATED]: 'caller',
  [Code.OUT_OF_RANGE]: 'caller',
  [Code.RESOURCE_EXHAUSTED]: 'overload',
  [Code.DEADLINE_EXCEEDED]: 'deadline',
  [Code.UNAVAILABLE]: 'appliance',
};

/** Node system error codes that mean "the peer is not there (now)". */
const unavailableErrnos = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'ERR_IPC_CHANNEL_CLOSED',
]);

/**
 * The one error type of hsm-broker: a gRPC status code, a stable reason, a
 * message that names the offending field, and whether trying again can help.
 */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly code: Code;
  readonly reason: string;
  readonly details: Record<string, string | number | boolean>;
  readonly retryable: boolean;
  readonly failureClass: FailureClass;

  constructor(code: Code, message: string, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason ?? codeName(code);
    this.details = options.details ?? {};
    this.failureClass = options.failureClass ?? defaultClass[code] ?? 'internal';
    this.retryable =
      options.retryable ?? (code === Code.UNAVAILABLE || code === Code.RESOURCE_EXHAUSTED);
  }

  /** Turns anything thrown into a BrokerError, keeping the original as `cause`. */
  static from(reason: unknown): BrokerError {
    if (reason instanceof BrokerError) return reason;
    if (reason instanceof Error) {
      const errno = (reason as NodeJS.ErrnoException).code;
      if (typeof errno === 'string' && unavailableErrnos.has(errno)) {
        return new BrokerError(Code.UNAVAILABLE, reason.message, {
          cause: reason,
          reason: errno,
          failureClass: 'appliance',
        });
      }
      return new BrokerError(Code.INTERNAL, reason.message, { cause: reason });
    }
    return new BrokerError(Code.INTERNAL, String(reason));
  }

  /** A caller mistake in one request field. */
  static invalidArgument(field: string, message: string, reason = 'INVALID_ARGUMENT'): BrokerError {
    return new BrokerError(Code.INVALID_ARGUMENT, `${field}: ${message}`, {
      reason,
      details: { field },
    });
  }

  /** The plain-data form, for crossing a process boundary. */
  toJSON(): SerializedBrokerError {
    return {
      code: this.code,
      message: this.message,
      reason: this.reason,
      details: this.details,
      retryable: this.retryable,
      failureClass: this.failureClass,
    };
  }

  /** Rebuilds an error made by {@link BrokerError.toJSON}. */
  static fromJSON(value: SerializedBrokerError): BrokerError {
    return new BrokerError(value.code, value.message, {
      reason: value.reason,
      details: value.details,
      retryable: value.retryable,
      failureClass: value.failureClass,
    });
  }
}
