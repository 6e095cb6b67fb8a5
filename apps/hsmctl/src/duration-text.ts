import { UsageError } from './command-line.js';

const units: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Reads a duration such as `500ms`, `30s`, `5m`, `1h` or `1m30s` into
 * milliseconds; a bare number is seconds. Anything else names the field.
 */
export function parseDuration(input: string, field: string, bounds: { minMs: number; maxMs: number }): number {
  const text = input.trim();
  let total = 0;
  if (/^\d+(\.\d+)?$/.test(text)) {
    total = Number(text) * 1000;
  } else {
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
    if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) {
      throw new UsageError(`${field}: expected a duration such as 30s, 5m or 1m30s, got '${input}'`);
    }
    for (const part of parts) total += Number(part[1]) * (units[part[2] ?? ''] ?? 0);
  }
  if (total < bounds.minMs || total > bounds.maxMs) {
    throw new UsageError(
      `${field}: expected a duration from ${formatDuration(bounds.minMs)} to ${formatDuration(bounds.maxMs)}, got '${input}'`,
    );
  }
  return Math.round(total);
}

/** `1m30s`, `2.5s`, `300ms`: a duration for people. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${String(Math.round(ms))}ms`;
  if (ms < 60_000) return `${String(Number((ms / 1000).toFixed(1)))}s`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${String(ms / 3_600_000)}h`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds === 0 ? `${String(minutes)}m` : `${String(minutes)}m${String(seconds)}s`;
}
