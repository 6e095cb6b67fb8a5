import type { CallOptions, ExecuteOptions, Executed, OfficerSession, WorkerArgs, WorkerOperation, WorkerResult } from '@hsm-broker/fleet';

/**
 * What the key registry knows of one appliance: where it is and whether it
 * can be asked now. Replicas are placed by id and counted by zone.
 */
export interface ReplicaTarget {
  readonly id: string;
  readonly zone: string;
  /** In service: not drained, fenced, broken open or down. */
  readonly available: boolean;
}

/**
 * The part of the fleet that key lifecycle, replication and crypto use.
 * `Fleet` from libs/fleet satisfies it as it is; unit tests pass an
 * in-memory fleet instead, so quorum, repair and resolution are tested
 * without SoftHSM or worker processes.
 */
export interface FleetPort {
  /** Every configured appliance, in configuration order. */
  readonly appliances: readonly ReplicaTarget[];
  /** One appliance by id; throws NOT_FOUND for an id not configured. */
  appliance(id: string): ReplicaTarget;
  /** Runs `op` on one appliance the fleet chooses (among `options.candidates`, offering the mechanism the arguments need), with failover for idempotent operations. */
  execute<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, options?: ExecuteOptions): Promise<Executed<WorkerResult<K>>>;
  /** Runs `op` on exactly `applianceId`, without failover. */
  executeOn<K extends WorkerOperation>(applianceId: string, op: K, args: WorkerArgs<K>, options?: CallOptions): Promise<WorkerResult<K>>;
}

/**
 * A fleet that also opens security-officer sessions: needed to enroll
 * appliances in the fleet KEK and to bring the backup key in, never on the
 * request path.
 */
export interface OfficerFleetPort extends FleetPort {
  /** Whether a security-officer session can be opened on `applianceId`. */
  hasOfficer(applianceId: string): boolean;
  /** Runs `body` with a security-officer session on one appliance. */
  withOfficer<T>(applianceId: string, body: (session: OfficerSession) => Promise<T>): Promise<T>;
}
