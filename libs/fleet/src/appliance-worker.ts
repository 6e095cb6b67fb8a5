import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { LoginRole, TokenSelector } from '@hsm-broker/pkcs11';
import type { ActiveFault } from './fault-injection.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import { WorkerConnection } from './worker-connection.js';
import type { WorkerCallOptions } from './worker-connection.js';
import { workerEnvironment } from './worker-environment.js';
import type { ParentMessage, WorkerMessage } from './worker-protocol.js';
import { workerPipeFd } from './worker-protocol.js';

const defaultEntry = new URL('./appliance-worker-main.js', import.meta.url);

/** How to start a worker for one appliance. */
export interface WorkerSpec {
  applianceId: string;
  modulePath: string;
  selector: TokenSelector;
  role: LoginRole;
  /** Held in memory; sent over the IPC channel once. */
  pin?: string;
  /**
   * Environment for the PKCS#11 module (SOFTHSM2_CONF, P11_KIT_SERVER_ADDRESS, …).
   * Besides it the worker inherits only a few harmless variables (PATH, locale),
   * never the broker's whole environment.
   */
  env: Record<string, string>;
  /** How long opening the token and logging in may take. */
  startTimeoutMs: number;
  /**
   * PKCS#11 sessions the process keeps open; up to this many sign, verify,
   * encrypt, decrypt, MAC and random calls run at once on its thread pool.
   * Default 1: calls run one after another.
   */
  sessions?: number;
  /**
   * The worker program; default the appliance worker. Tests substitute a
   * program that speaks the same pipe protocol without a token.
   * @internal
   */
  entry?: URL;
}

/** Why a worker stopped, for status output. */
export type WorkerExit = { code: number | null; signal: NodeJS.Signals | null; reason: string };

/**
 * One OS process speaking PKCS#11 to one appliance. Calls are pipelined over
 * its pipe (many in flight; the process runs them in order). A call that
 * outlives its timeout is a hang: the process is killed, since a C call that
 * never returns cannot be cancelled any other way, and every call still in
 * flight on it fails with a retryable appliance fault.
 */
export class ApplianceWorker {
  readonly spec: WorkerSpec;
  readonly #child: ChildProcess;
  readonly #connection: WorkerConnection;
  #exited: WorkerExit | undefined;
  readonly #exitListeners: ((exit: WorkerExit) => void)[] = [];
  #killReason: string | undefined;

  private constructor(spec: WorkerSpec, child: ChildProcess, pipe: Socket) {
    this.spec = spec;
    this.#child = child;
    this.#connection = new WorkerConnection(spec.applianceId, pipe, (op) => this.kill(`${op} timed out`), spec.sessions ?? 1);
    pipe.on('data', (chunk: Buffer) => {
      try {
        this.#connection.receive(chunk);
      } catch {
        this.kill('sent a corrupt frame');
      }
    });
    pipe.on('error', () => {
      // The process is gone or going; 'exit' carries the outcome.
    });
  }

  /** Starts the process and waits until it has logged in to the token. */
  static async start(spec: WorkerSpec): Promise<ApplianceWorker> {
    const stdio: ('ignore' | 'inherit' | 'ipc' | 'pipe')[] = ['ignore', 'inherit', 'inherit', 'ipc'];
    while (stdio.length < workerPipeFd) stdio.push('ignore');
    stdio.push('pipe');
    const child = fork(spec.entry ?? defaultEntry, [`--appliance=${spec.applianceId}`], {
      env: workerEnvironment(process.env, spec.env, spec.sessions ?? 1),
      execArgv: [],
      serialization: 'advanced',
      stdio,
    });
    const worker = new ApplianceWorker(spec, child, child.stdio[workerPipeFd] as Socket);
    child.on('exit', (code, signal) => worker.#onExit(code, signal));
    child.on('error', () => {
      // 'exit' follows and carries the outcome.
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.kill('start timed out');
        reject(new BrokerError(Code.UNAVAILABLE, `appliance ${spec.applianceId}: worker did not log in within ${String(spec.startTimeoutMs)} ms`, {
          reason: 'WORKER_START_TIMEOUT',
          failureClass: 'appliance',
        }));
      }, spec.startTimeoutMs);
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve();
        } else if (message.type === 'init-failed') {
          clearTimeout(timer);
          child.off('message', onMessage);
          worker.kill('init failed');
          const cause = BrokerError.fromJSON(message.error);
          reject(new BrokerError(cause.code === Code.INTERNAL ? Code.UNAVAILABLE : cause.code, `appliance ${spec.applianceId}: ${cause.message}`, {
            reason: cause.reason,
            failureClass: 'appliance',
            cause,
          }));
        }
      };
      child.on('message', onMessage);
      worker.onExit((exit) => {
        clearTimeout(timer);
        reject(new BrokerError(Code.UNAVAILABLE, `appliance ${spec.applianceId}: worker exited during start (${exit.reason})`, {
          reason: 'WORKER_EXITED',
          failureClass: 'appliance',
        }));
      });
      const init: ParentMessage = {
        type: 'init',
        modulePath: spec.modulePath,
        selector: spec.selector,
        role: spec.role,
        sessions: spec.sessions ?? 1,
        ...(spec.pin === undefined ? {} : { pin: spec.pin }),
      };
      child.send(init);
    });
    return worker;
  }

  /** The worker's process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited !== undefined;
  }

  /** Calls sent to the process and not yet answered. */
  get inFlight(): number {
    return this.#connection.inFlight;
  }

  /** How many calls the process runs at once (its PKCS#11 sessions). */
  get sessions(): number {
    return this.#connection.sessions;
  }

  /** The worker's recent time per call (see WorkerConnection.serviceTimeMs). */
  get serviceTimeMs(): number {
    return this.#connection.serviceTimeMs;
  }

  /** Registers a listener for the process's exit (called at most once). */
  onExit(listener: (exit: WorkerExit) => void): void {
    if (this.#exited) listener(this.#exited);
    else this.#exitListeners.push(listener);
  }

  /** Called after each call on this worker settled. Listeners must not throw. */
  onCallSettled(listener: () => void): void {
    this.#connection.onSettled(listener);
  }

  /** Performs one operation. Rejects with an appliance fault when the worker dies or times out. */
  call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, timeoutMs: number, options?: WorkerCallOptions): Promise<WorkerResult<K>> {
    return this.#connection.call(op, args, timeoutMs, options);
  }

  /** Replaces the injected faults this worker applies (failure rehearsals). */
  setFaults(faults: ActiveFault[]): void {
    if (this.#exited) return;
    const message: ParentMessage = { type: 'faults', faults };
    this.#child.send(message, () => undefined);
  }

  /** Kills the process (SIGKILL: a hung PKCS#11 call ignores anything gentler). */
  kill(reason: string): void {
    if (this.#exited) return;
    this.#killReason ??= reason;
    this.#child.kill('SIGKILL');
  }

  /** Asks the process to finish: it closes its session and exits. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.onExit(() => resolve()));
    if (this.#child.connected) this.#child.disconnect();
    const timer = setTimeout(() => this.kill('did not stop'), 2000);
    await exited;
    clearTimeout(timer);
  }

  #gone(op: string): BrokerError {
    return new BrokerError(Code.UNAVAILABLE, `appliance ${this.spec.applianceId}: worker is gone (${this.#exited?.reason ?? 'exited'}); ${op} not performed`, {
      reason: 'WORKER_EXITED',
      failureClass: 'appliance',
      details: { appliance: this.spec.applianceId, op },
    });
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const reason = this.#killReason ?? (signal ? `killed by ${signal}` : `exit code ${String(code)}`);
    this.#exited = { code, signal, reason };
    this.#connection.failAll((op) => this.#gone(op));
    for (const listener of this.#exitListeners.splice(0)) listener(this.#exited);
  }
}
