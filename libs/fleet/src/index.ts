export { Appliance } from './appliance.js';
export type { ApplianceConfig, ApplianceHealth, ApplianceStats, ApplianceTimeouts, CallOptions } from './appliance.js';
export { ApplianceWorker } from './appliance-worker.js';
export type { WorkerExit, WorkerSpec } from './appliance-worker.js';
export { Fleet } from './fleet.js';
export type { ApplianceSnapshot, ExecuteOptions, Executed, FleetConfig, FleetSnapshot, OfficerSession } from './fleet.js';
export { idempotentOperations } from './worker-operations.js';
export type { WorkerArgs, WorkerOperation, WorkerOperations, WorkerResult } from './worker-operations.js';
