import type { SerializedBrokerError } from '@hsm-broker/errors';
import type { LoginRole, TokenSelector } from '@hsm-broker/pkcs11';
import type { ActiveFault } from './fault-injection.js';

/** First message from parent to worker: which token and how to log in. */
export interface WorkerInitMessage {
  type: 'init';
  modulePath: string;
  selector: TokenSelector;
  role: LoginRole;
  pin?: string;
}

/** One operation request. */
export interface WorkerRequestMessage {
  type: 'request';
  id: number;
  op: string;
  args: unknown;
}

/** Replaces the injected faults the worker applies to each call. */
export interface WorkerFaultsMessage {
  type: 'faults';
  faults: ActiveFault[];
}

/** Parent → worker. */
export type ParentMessage = WorkerInitMessage | WorkerRequestMessage | WorkerFaultsMessage;

/** Worker → parent. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'init-failed'; error: SerializedBrokerError }
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: SerializedBrokerError };
