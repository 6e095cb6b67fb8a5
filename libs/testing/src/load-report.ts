import { createHash, createPublicKey, verify } from 'node:crypto';
import type { BrokerClient } from '@hsm-broker/client';
import { BrokerError, codeName } from '@hsm-broker/errors';
import type { LoadCall } from './mixed-load.js';

/** Operations the broker may retry on another appliance: none of them may fail in a failover scenario. */
export const idempotentOps: ReadonlySet<string> = new Set(['Encrypt', 'Decrypt', 'Sign', 'Verify', 'GenerateMac', 'GenerateDataKey']);

/** The figures of one scenario. */
export interface LoadSummary {
  calls: number;
  failuresByCode: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  /** Idempotent calls that failed (must be none). */
  idempotentFailures: LoadCall[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Counts, failures by status code and latency percentiles of a load's calls. */
export function summarise(calls: readonly LoadCall[]): LoadSummary {
  const failuresByCode: Record<string, number> = {};
  for (const call of calls) if (!call.ok) failuresByCode[call.code] = (failuresByCode[call.code] ?? 0) + 1;
  const latencies = calls.map((call) => call.ms).sort((a, b) => a - b);
  return {
    calls: calls.length,
    failuresByCode,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    idempotentFailures: calls.filter((call) => !call.ok && idempotentOps.has(call.op)),
  };
}

/** One row of the suite's closing table. */
export interface ScenarioRow {
  scenario: string;
  summary: LoadSummary;
  /** From the fault until the faulty appliances served their last call. */
  trafficLeftMs: number | undefined;
  /** From the repair until the broker reported the faulty appliances healthy. */
  repairMs: number | undefined;
}

/** The per-scenario table: calls, failures by code, p50/p99, time until traffic left, time to repair. */
export function formatScenarioTable(rows: readonly ScenarioRow[]): string {
  const header = ['scenario', 'calls', 'failures by code', 'p50 ms', 'p99 ms', 'traffic left ms', 'repair ms'];
  const body = rows.map((row) => [
    row.scenario,
    String(row.summary.calls),
    Object.entries(row.summary.failuresByCode).map(([code, n]) => `${code}=${String(n)}`).join(' ') || '-',
    row.summary.p50Ms.toFixed(1),
    row.summary.p99Ms.toFixed(1),
    row.trafficLeftMs === undefined ? '-' : String(Math.round(row.trafficLeftMs)),
    row.repairMs === undefined ? '-' : String(Math.round(row.repairMs)),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

/**
 * Checks what the load was told: every ciphertext decrypts to the plaintext
 * it was made from, every signature verifies with node:crypto against the
 * key's public half, every acknowledged CreateKey is on at least
 * `minAppliances` appliances in `minZones` zones. Returns the problems found.
 */
export async function verifyLoadResults(
  client: BrokerClient,
  calls: readonly LoadCall[],
  quorum: { minAppliances: number; minZones: number; zoneOf: (applianceId: string) => string },
): Promise<string[]> {
  const problems: string[] = [];
  const publicKeys = new Map<string, ReturnType<typeof createPublicKey>>();
  for (const call of calls) {
    if (!call.ok) continue;
    try {
      if (call.ciphertext !== undefined) {
        const out = await client.decrypt({ ciphertext: Buffer.from(call.ciphertext, 'base64') });
        if (createHash('sha256').update(out.plaintext).digest('hex') !== call.digest) problems.push(`${call.op} at ${String(call.at)}: decrypted to other bytes`);
      } else if (call.signature !== undefined && call.message !== undefined) {
        let key = publicKeys.get(call.key);
        if (!key) {
          key = createPublicKey({ key: (await client.getPublicKey({ keyId: call.key })).publicKeyDer, format: 'der', type: 'spki' });
          publicKeys.set(call.key, key);
        }
        if (!verify('sha256', Buffer.from(call.message, 'base64'), key, Buffer.from(call.signature, 'base64'))) {
          problems.push(`Sign at ${String(call.at)}: signature does not verify with node:crypto`);
        }
      } else if (call.op === 'CreateKey' && call.keyId) {
        const replicas = (await client.describeKey({ keyId: call.keyId })).keyMetadata?.replicas ?? [];
        const zones = new Set(replicas.map((id) => quorum.zoneOf(id)));
        if (replicas.length < quorum.minAppliances || zones.size < quorum.minZones) {
          problems.push(`CreateKey ${call.keyId}: on ${replicas.join(', ') || 'no appliance'} (needs ${String(quorum.minAppliances)} in ${String(quorum.minZones)} zones)`);
        }
      }
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      problems.push(`${call.op} at ${String(call.at)}: checking it failed with ${codeName(failure.code)}: ${failure.message}`);
    }
  }
  return problems;
}
