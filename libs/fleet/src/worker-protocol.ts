import type { SerializedBrokerError } from '@hsm-broker/errors';
import type { LoginRole, TokenSelector } from '@hsm-broker/pkcs11';
import type { ActiveFault } from './fault-injection.js';

// A worker has two channels to the broker. The IPC channel carries the rare
// lifecycle messages below (init with the PIN, faults, ready, disconnect);
// the worker pipe, an extra stdio descriptor, carries the calls as binary
// frames (worker-wire.ts), many in flight at once.

/** The worker pipe's file descriptor in the worker process (stdio 0–2, IPC on 3). */
export const workerPipeFd = 4;

/** First message from parent to worker: which token and how to log in. */
export interface WorkerInitMessage {
  type: 'init';
  modulePath: string;
  selector: TokenSelector;
  role: LoginRole;
  pin?: string;
  /** PKCS#11 sessions the worker runs concurrent calls on (default 1: every call alone, in order). */
  sessions?: number;
}

/** Replaces the injected faults the worker applies to each call. */
export interface WorkerFaultsMessage {
  type: 'faults';
  faults: ActiveFault[];
}

/** Parent → worker over IPC. */
export type ParentMessage = WorkerInitMessage | WorkerFaultsMessage;

/** Worker → parent over IPC. */
export type WorkerMessage = { type: 'ready' } | { type: 'init-failed'; error: SerializedBrokerError };
