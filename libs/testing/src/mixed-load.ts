import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** The keys the load uses (made beforehand). */
export interface LoadKeys {
  aes: string;
  ec: string;
  hmac: string;
}

/** One call of the load, as the client saw it. */
export interface LoadCall {
  op: string;
  key: string;
  ok: boolean;
  /** gRPC status name (OK, UNAVAILABLE, …). */
  code: string;
  ms: number;
  /** When the call started (ms since the epoch). */
  at: number;
  /** Which call loop made it (`process/loop`); each loop has its own connection. */
  loop: string;
  message?: string;
  /** Encrypt and GenerateDataKey: the ciphertext (base64) and the SHA-256 of the plaintext. */
  ciphertext?: string;
  digest?: string;
  /** Sign: the message and signature (base64). */
  signature?: string;
  /** CreateKey: the id of the created key. */
  keyId?: string;
}

/** @internal The first message to a load process. */
export interface LoadWorkerStart {
  type: 'start';
  address: string;
  keys: LoadKeys;
  concurrency: number;
  deadlineMs: number;
  pauseMs: number;
  createKeys: boolean;
  /** This process's index among the load processes. */
  processIndex: number;
}

/** How much load, from how many client processes. */
export interface MixedLoadOptions {
  address: string;
  keys: LoadKeys;
  /** Client processes (outside the broker container); 2 by default. */
  processes?: number;
  /** Concurrent call loops per process; 2 by default. */
  concurrency?: number;
  /** Each call's deadline; 2000 ms by default. */
  deadlineMs?: number;
  /** Pause between calls of one loop (keeps the load steady, not saturating); 20 ms by default. */
  pauseMs?: number;
  /** One CreateKey a second from the first process; true by default. */
  createKeys?: boolean;
}

/** A running mixed load. */
export interface MixedLoad {
  /** Calls reported so far. */
  readonly calls: readonly LoadCall[];
  /** Stops the load and resolves with every call made. */
  stop(): Promise<LoadCall[]>;
}

const entry = new URL('./mixed-load-main.js', import.meta.url);

/** Starts the steady mixed load of the failover suite from separate client processes. */
export function startMixedLoad(options: MixedLoadOptions): MixedLoad {
  const calls: LoadCall[] = [];
  const children: ChildProcess[] = [];
  const done: Promise<void>[] = [];
  for (let index = 0; index < (options.processes ?? 2); index++) {
    const child = fork(entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    children.push(child);
    done.push(
      new Promise((resolve) => {
        child.on('message', (message: { type: 'calls'; calls: LoadCall[] } | { type: 'done' }) => {
          if (message.type === 'calls') calls.push(...message.calls);
        });
        child.on('exit', () => resolve());
      }),
    );
    const start: LoadWorkerStart = {
      type: 'start',
      address: options.address,
      keys: options.keys,
      concurrency: options.concurrency ?? 2,
      deadlineMs: options.deadlineMs ?? 2000,
      pauseMs: options.pauseMs ?? 20,
      createKeys: (options.createKeys ?? true) && index === 0,
      processIndex: index,
    };
    child.send(start);
  }
  return {
    calls,
    async stop() {
      for (const child of children) if (child.connected) child.send({ type: 'stop' });
      const timer = setTimeout(() => children.forEach((child) => child.kill('SIGKILL')), 15_000);
      await Promise.all(done);
      clearTimeout(timer);
      return calls;
    },
  };
}
