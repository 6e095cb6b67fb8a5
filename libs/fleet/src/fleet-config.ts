import type { Tracer } from '@opentelemetry/api';
import type { ApplianceConfig, ApplianceTimeouts, CallOptions } from './appliance-config.js';
import type { BreakerPolicy } from './appliance-breaker.js';
import type { RetryBudgetPolicy } from './retry-budget.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import type { WorkerFactory } from './worker-pool.js';

/** Routing, failure handling and recovery settings. */
export interface RoutingPolicy {
  /** Zones in order of preference after the local zone; others follow. */
  zonePriority: string[];
  /** When false, every zone is one level and traffic spreads across all. */
  preferLocalZone: boolean;
  breaker: BreakerPolicy;
  retryBudget: RetryBudgetPolicy;
  /** Most attempts for one idempotent call (first try included). */
  maxAttempts: number;
  /** Sign calls still running after this long are sent to a second appliance too (0 = off). */
  hedgeDelayMs: number;
  slowStartMs: number;
  /** Background probe period; an idle broker still learns the fleet's state. */
  healthIntervalMs: number;
  probeTimeoutMs: number;
  /** Whether InjectFault is allowed. */
  faultInjection: boolean;
}

/** The fleet as configured. */
export interface FleetConfig {
  /** The zone the broker runs in. */
  localZone: string;
  appliances: ApplianceConfig[];
  timeouts: ApplianceTimeouts;
  routing: RoutingPolicy;
  /** Receives one span per appliance attempt (OpenTelemetry API); default: the global tracer. */
  tracer?: Tracer;
  /** Starts appliance workers; default one OS process each (tests inject fakes). */
  workerFactory?: WorkerFactory;
}

/** Options for {@link Fleet.execute}. */
export interface ExecuteOptions extends CallOptions {
  /** Only these appliances may serve the call (the holders of a key version). */
  candidates?: readonly string[];
  /** A PKCS#11 mechanism the appliance must offer (as discovered with C_GetMechanismList). */
  mechanism?: string;
  /** Told each appliance an attempt goes to, in order (failover and hedges included), so the audit trail can name them. */
  onAttempt?: (applianceId: string) => void;
}

/** A result and where it was computed. */
export interface Executed<T> {
  result: T;
  applianceId: string;
}

/** A security-officer session on one appliance, for KEK enrollment. */
export interface OfficerSession {
  call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>): Promise<WorkerResult<K>>;
}

