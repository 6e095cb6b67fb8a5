import { AsyncLocalStorage } from 'node:async_hooks';
import { trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';

/** Log levels, most severe last. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured logging: one JSON object per line. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What a line logged while serving a call says about that call. */
export interface CallScope {
  requestId: string;
  method: string;
}

const callScopes = new AsyncLocalStorage<CallScope>();

/**
 * Runs `body` as part of one call: every line logged inside it, however
 * deep (registry, reconciler kicks, fleet), carries the call's request id
 * without each call site having to pass it along.
 */
export function withCallScope<T>(scope: CallScope, body: () => T): T {
  return callScopes.run(scope, body);
}

/**
 * Field names whose values are never written, at the top level or one
 * level down. Callers pass identifiers and counts, never secrets; this is
 * the second line for the day someone forgets.
 */
export const redactedFields: readonly string[] = [
  'pin',
  'userPin',
  'soPin',
  'password',
  'passphrase',
  'secret',
  'plaintext',
  'keyMaterial',
  'privateKey',
  'wrappedKey',
  'authorization',
].flatMap((name) => [name, `*.${name}`]);

/** Where lines go: a function given each line, or a pino destination. */
export type LogSink = ((line: string) => void) | DestinationStream;

/**
 * A pino logger behind the broker's {@link Logger} interface: JSON lines
 * with `time`, `level` (as a word), `message`, the caller's `requestId`
 * and the active `traceId` when there are some, and the fields given;
 * secret-named fields are censored. Written synchronously to stderr by
 * default, so the last lines before an exit are not lost.
 */
export function createLogger(level: LogLevel, sink: LogSink = pino.destination({ fd: 2, sync: true })): Logger {
  const destination: DestinationStream = typeof sink === 'function' ? { write: sink } : sink;
  const logger: PinoLogger = pino(
    {
      level,
      base: undefined,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...redactedFields], censor: '[redacted]' },
      mixin: scopeFields,
    },
    destination,
  );
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

/** Sends every line to each logger in turn (a console at one level, a file at another). */
export function teeLogger(...loggers: Logger[]): Logger {
  return {
    debug: (message, fields) => loggers.forEach((log) => log.debug(message, fields)),
    info: (message, fields) => loggers.forEach((log) => log.info(message, fields)),
    warn: (message, fields) => loggers.forEach((log) => log.warn(message, fields)),
    error: (message, fields) => loggers.forEach((log) => log.error(message, fields)),
  };
}

function scopeFields(): Record<string, unknown> {
  const scope = callScopes.getStore();
  const span = trace.getActiveSpan()?.spanContext();
  return {
    ...(scope ? { requestId: scope.requestId, method: scope.method } : {}),
    ...(span && trace.isSpanContextValid(span) ? { traceId: span.traceId, spanId: span.spanId } : {}),
  };
}
