import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { SerializedBrokerError } from '@hsm-broker/errors';

/** Who a token session logs in as; `init` only initialises a token. */
export type SessionRole = 'user' | 'so' | 'init';

/** Parent → child: open the session. The PIN travels over IPC only. */
export interface SessionInit {
  type: 'init';
  role: SessionRole;
  modulePath: string;
  label: string;
  pin?: string;
}

/** Parent → child: one operation. */
export interface SessionRequest {
  type: 'request';
  id: number;
  op: string;
  args: Record<string, unknown>;
}

/** Child → parent. */
export type SessionReply =
  | { type: 'ready' }
  | { type: 'failed'; error: SerializedBrokerError }
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: SerializedBrokerError };

const entry = new URL('./token-session-main.js', import.meta.url);

/** A PKCS#11 session on the node's token, in a child process of its own. */
export class TokenSession {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: BrokerError): void }>();
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: SessionReply) => {
      if (message.type !== 'response') return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(BrokerError.fromJSON(message.error));
    });
    child.on('exit', () => {
      this.#exited = true;
      for (const pending of this.#pending.values()) {
        pending.reject(new BrokerError(Code.UNAVAILABLE, 'the token session ended', { reason: 'TOKEN_SESSION_ENDED', failureClass: 'appliance' }));
      }
      this.#pending.clear();
    });
  }

  /**
   * Starts a session process with only the environment the module needs
   * (`env`), logs in as `role` and resolves once it is ready.
   */
  static async open(init: Omit<SessionInit, 'type'>, env: Record<string, string>): Promise<TokenSession> {
    const child = fork(entry, [`--role=${init.role}`], { env, execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const session = new TokenSession(child);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: SessionReply): void => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'failed') reject(BrokerError.fromJSON(message.error));
        else return;
        child.off('message', onMessage);
      };
      child.on('message', onMessage);
      child.once('exit', () => reject(new BrokerError(Code.UNAVAILABLE, 'the token session exited while opening', { reason: 'TOKEN_SESSION_ENDED', failureClass: 'appliance' })));
      child.send({ type: 'init', ...init } satisfies SessionInit);
    });
    return session;
  }

  /** Whether the process has ended. */
  get closed(): boolean {
    return this.#exited;
  }

  /** Performs one operation in the session. */
  call(op: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.#exited) return Promise.reject(new BrokerError(Code.UNAVAILABLE, 'the token session ended', { reason: 'TOKEN_SESSION_ENDED', failureClass: 'appliance' }));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.send({ type: 'request', id, op, args } satisfies SessionRequest);
    });
  }

  /** Ends the session (logs out) and waits for the process to exit. */
  async close(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the process at once (zeroize). */
  kill(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
  }
}
