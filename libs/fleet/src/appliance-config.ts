import type { TokenSelector } from '@hsm-broker/pkcs11';
import type { BreakerPolicy } from './appliance-breaker.js';
import type { CloneEndpoint } from './clone-client.js';
import type { WorkerFactory } from './worker-pool.js';

/** One HSM appliance as configured. */
export interface ApplianceConfig {
  id: string;
  zone: string;
  /** Path of the PKCS#11 module that reaches the appliance. */
  modulePath: string;
  selector: TokenSelector;
  /** Crypto-user PIN. In memory only. */
  userPin: string;
  /** Security-officer PIN, needed to enroll the appliance in the fleet KEK. */
  soPin?: string;
  /** Environment for the module: SOFTHSM2_CONF, P11_KIT_SERVER_ADDRESS, … */
  env: Record<string, string>;
  /** Worker processes for this appliance. */
  workers: number;
  /**
   * PKCS#11 sessions per worker process (default 1). With more than one, a
   * process runs that many crypto calls at once on its thread pool; with a
   * module that serialises calls per process (the p11-kit client) add
   * processes instead.
   */
  sessionsPerWorker?: number;
  /** Calls pipelined to one worker process at most (default 32). */
  maxInFlightPerWorker?: number;
  /**
   * The node's clone endpoint, for appliances reached over the network: key
   * wrapping and the officer steps of KEK transfer run there, inside the
   * node, because the PKCS#11 link cannot carry AES key wrap.
   */
  clone?: CloneEndpoint;
}

/** Time limits for appliance calls. */
export interface ApplianceTimeouts {
  /** A crypto call that takes longer is a hang: the worker is replaced. */
  callMs: number;
  /** Key generation and replication may take longer (RSA-4096 generation). */
  slowCallMs: number;
  /** Opening the token and logging in. */
  startMs: number;
}

/** Coarse health of an appliance. */
export type ApplianceHealth = 'starting' | 'healthy' | 'degraded' | 'down';

/** Counters reported in fleet status. */
export interface ApplianceStats {
  requestsTotal: number;
  failuresTotal: number;
  latencyEwmaMs: number;
  lastError: string;
  workerRestartsTotal: number;
  consecutiveFailures: number;
}

/** Options of one call. */
export interface CallOptions {
  /** Absolute deadline (ms since epoch) of the caller. */
  deadline?: number;
  /** Use the long timeout (key generation, unwrapping). */
  slow?: boolean;
  /** A health probe or maintenance call: not counted as a caller's request. */
  background?: boolean;
  /**
   * Told when the caller's deadline passes while the worker still runs the
   * call: `settled` ends when the worker does. Whoever started work that
   * leaves something behind (a generated key) cleans up from there.
   */
  onAbandoned?: (applianceId: string, settled: Promise<unknown>) => void;
}

/** How an appliance returns to service. */
export interface RecoveryPolicy {
  breaker: BreakerPolicy;
  /** After recovering, an appliance's share of traffic grows linearly over this long. */
  slowStartMs: number;
}

/** How an appliance gets its workers; default: one OS process each. */
export interface ApplianceSeams {
  workerFactory?: WorkerFactory;
}
