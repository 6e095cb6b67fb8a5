import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { LoginRole, TokenSelector } from '@hsm-broker/pkcs11';
import type { ActiveFault } from './fault-injection.js';
import type { WorkerArgs, WorkerOperation, WorkerResult } from './worker-operations.js';
import { workerEnvironment } from './worker-environment.js';
import type { ParentMessage, WorkerMessage } from './worker-protocol.js';
import { setStallTolerantTimeout } from './stall-tolerant-timer.js';

const workerEntry = new URL('./appliance-worker-main.js', import.meta.url);

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
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: BrokerError): void;
  timer: NodeJS.Timeout;
}

/** Why a worker stopped, for status output. */
export type WorkerExit = { code: number | null; signal: NodeJS.Signals | null; reason: string };

/**
 * One OS process speaking PKCS#11 to one appliance. It runs one operation at
 * a time. A call that outlives its timeout is abandoned and the process is
 * killed: a C call that never returns cannot be cancelled any other way.
 */
export class ApplianceWorker {
  readonly spec: WorkerSpec;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #exited: WorkerExit | undefined;
  readonly #exitListeners: ((exit: WorkerExit) => void)[] = [];

  private constructor(spec: WorkerSpec, child: ChildProcess) {
    this.spec = spec;
    this.#child = child;
  }

  /** Starts the process and waits until it has logged in to the token. */
  static async start(spec: WorkerSpec): Promise<ApplianceWorker> {
    const child = fork(workerEntry, [`--appliance=${spec.applianceId}`], {
      env: workerEnvironment(process.env, spec.env),
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const worker = new ApplianceWorker(spec, child);
    child.on('message', (message: WorkerMessage) => worker.#onMessage(message));
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

  /** Registers a listener for the process's exit (called at most once). */
  onExit(listener: (exit: WorkerExit) => void): void {
    if (this.#exited) listener(this.#exited);
    else this.#exitListeners.push(listener);
  }

  /** Performs one operation. Rejects with an appliance fault when the worker dies or times out. */
  call<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, timeoutMs: number): Promise<WorkerResult<K>> {
    if (this.#exited) {
      return Promise.reject(this.#gone(op));
    }
    const id = this.#nextId++;
    return new Promise<WorkerResult<K>>((resolve, reject) => {
      const timer = setStallTolerantTimeout(() => {
        if (!this.#pending.has(id)) return;
        this.#pending.delete(id);
        reject(new BrokerError(Code.UNAVAILABLE, `appliance ${this.spec.applianceId}: ${op} did not complete within ${String(timeoutMs)} ms; worker replaced`, {
          reason: 'APPLIANCE_TIMEOUT',
          failureClass: 'appliance',
          details: { appliance: this.spec.applianceId, op },
        }));
        this.kill(`${op} timed out`);
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve, reject, timer });
      const message: ParentMessage = { type: 'request', id, op, args };
      this.#child.send(message, (error) => {
        if (error) {
          const pending = this.#pending.get(id);
          if (!pending) return;
          clearTimeout(pending.timer);
          this.#pending.delete(id);
          pending.reject(this.#gone(op));
        }
      });
    });
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
    this.#killReason = reason;
    this.#child.kill('SIGKILL');
  }

  #killReason: string | undefined;

  /** Asks the process to finish: it closes its session and exits. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.onExit(() => resolve()));
    this.#child.disconnect();
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

  #onMessage(message: WorkerMessage): void {
    if (message.type !== 'response') return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(BrokerError.fromJSON(message.error));
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const reason = this.#killReason ?? (signal ? `killed by ${signal}` : `exit code ${String(code)}`);
    this.#exited = { code, signal, reason };
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(this.#gone('call'));
    }
    for (const listener of this.#exitListeners.splice(0)) listener(this.#exited);
  }
}
