export { Appliance } from './appliance.js';
export type { ApplianceCallListener, ApplianceCallOutcome, ApplianceCallSample } from './appliance-call-sample.js';
export type { ApplianceConfig, ApplianceHealth, ApplianceSeams, ApplianceStats, ApplianceTimeouts, CallOptions, RecoveryPolicy } from './appliance.js';
export { ApplianceBreaker } from './appliance-breaker.js';
export type { BreakerPolicy, BreakerState } from './appliance-breaker.js';
export { ApplianceWorker } from './appliance-worker.js';
export { CloneClient } from './clone-client.js';
export type { CloneArgs, CloneEndpoint, CloneOfficerSession, CloneResult } from './clone-client.js';
export type { WorkerExit, WorkerSpec } from './appliance-worker.js';
export type { ActiveFault, FaultKind } from './fault-injection.js';
export { Fleet } from './fleet.js';
export type { FleetControlEvent, FleetControlKind, FleetControlListener } from './fleet-control-event.js';
export type {
  ApplianceSnapshot,
  ApplianceStatusState,
  ExecuteOptions,
  Executed,
  FaultRequest,
  FleetConfig,
  FleetSnapshot,
  OfficerSession,
  RoutingPolicy,
  ZoneSnapshot,
} from './fleet.js';
export type { AttemptOutcome, CallAttempt, RoutedCall, RoutedCallListener } from './routed-call.js';
export { RetryBudget } from './retry-budget.js';
export type { RetryBudgetPolicy } from './retry-budget.js';
export { idempotentOperations, operationCatalog } from './worker-operations.js';
export type { MechanismRef, OperationDefinition, WorkerArgs, WorkerContext, WorkerOperation, WorkerOperations, WorkerResult } from './worker-operations.js';
export type { WorkerCallOptions } from './worker-connection.js';
export { processWorkerFactory } from './worker-pool.js';
export type { PooledWorker, WorkerFactory } from './worker-pool.js';
export { chooseAppliance } from './zone-router.js';
export type { RouteCandidate, RouteChoice, RouteOptions } from './zone-router.js';
