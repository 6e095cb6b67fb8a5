/** How many appliances, in how many zones, must hold a key version before it is usable. */
export interface DurabilityPolicy {
  minAppliances: number;
  minZones: number;
}

/** Where log lines go. Messages never contain key material, plaintext or PINs. */
export type RegistryLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/** Per-request options. */
export interface RequestOptions {
  /** Absolute deadline, ms since epoch. */
  deadline?: number;
  /** Told each appliance the fleet sends the call to (see ExecuteOptions.onAttempt). */
  onAttempt?: (applianceId: string) => void;
}
