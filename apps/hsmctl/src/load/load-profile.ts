import { loadOperations, type LoadOperation } from './call-history.js';

/** How hard and how the mixed load drives the broker. */
export interface LoadProfile {
  /** Calls per second of each operation (summed over every load process). */
  rates: Readonly<Record<LoadOperation, number>>;
  /** Deadline of each crypto call, ms. */
  deadlineMs: number;
  /** Deadline of each CreateKey and RotateKey, ms. */
  writeDeadlineMs: number;
  /** Plaintext and message size, bytes. */
  payloadBytes: number;
  /** Calls in flight at most per load process; a call due beyond it is shed and counted. */
  maxInFlight: number;
  /** Load processes; more than one forks child processes, each with its share of the rates. */
  processes: number;
}

/**
 * The steady mixed load of the failover suite: encrypt, decrypt, sign,
 * verify, MAC, data keys, and one CreateKey every second; RotateKey now and
 * then so that rotations are under test too.
 */
export const defaultLoadProfile: LoadProfile = {
  rates: {
    Encrypt: 20,
    Decrypt: 20,
    Sign: 10,
    Verify: 10,
    GenerateMac: 10,
    VerifyMac: 10,
    GenerateDataKey: 5,
    CreateKey: 1,
    RotateKey: 0.1,
  },
  deadlineMs: 2000,
  writeDeadlineMs: 10_000,
  payloadBytes: 256,
  maxInFlight: 64,
  processes: 1,
};

/** The rates scaled by a factor (`--rate-scale`), each kept as given when it is zero. */
export function scaleRates(rates: Readonly<Record<LoadOperation, number>>, factor: number): Record<LoadOperation, number> {
  const scaled = { ...rates };
  for (const op of loadOperations) scaled[op] = rates[op] * factor;
  return scaled;
}

/** Calls per second over every operation. */
export function totalRate(profile: LoadProfile): number {
  return loadOperations.reduce((sum, op) => sum + profile.rates[op], 0);
}
