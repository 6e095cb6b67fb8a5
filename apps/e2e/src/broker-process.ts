import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { workspaceRoot } from './process-run.js';

/** How to start a {@link BrokerProcess}. */
export interface BrokerProcessOptions {
  /** HSMB_* settings; HSMB_LISTEN defaults to a free loopback port. */
  env: Record<string, string>;
  /** How long start-up may take before it counts as failed. Default: 120 s. */
  startTimeoutMs?: number;
}

/**
 * A broker running as its own OS process (`apps/broker/dist/main.js`), in
 * its own process group with its appliance workers, so that a test can kill
 * the whole replica at once as a dying host would.
 */
export interface BrokerProcess extends AsyncDisposable {
  /** `127.0.0.1:PORT` it serves on. */
  readonly address: string;
  /** The last 64 KiB it wrote to stderr (its JSON log). */
  log(): string;
  /** SIGKILLs the broker and its workers; resolves once the broker has exited. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL if it is still there after 20 s. Safe to call twice. */
  stop(): Promise<void>;
}

/** The address named by the "hsm-broker serving" JSON log line, once one has been written whole. */
function servingAddress(log: string): string | undefined {
  for (const line of log.split('\n')) {
    if (!line.includes('hsm-broker serving')) continue;
    try {
      const parsed = JSON.parse(line) as { message?: unknown; address?: unknown };
      if (parsed.message === 'hsm-broker serving' && typeof parsed.address === 'string') return parsed.address;
    } catch {
      // Not whole yet: the rest of the line is still to come.
    }
  }
  return undefined;
}

/**
 * Starts `node apps/broker/dist/main.js` with exactly the given HSMB_*
 * settings (none from this process's environment) and resolves once its
 * "hsm-broker serving" log line names the address it listens on.
 */
export async function startBrokerProcess(options: BrokerProcessOptions): Promise<BrokerProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HSMB_')));
  const child: ChildProcess = spawn(process.execPath, [join(workspaceRoot, 'apps/broker/dist/main.js')], {
    cwd: workspaceRoot,
    // Admin listeners on free ports too: replicas and other tests run side by side.
    env: { ...env, HSMB_LISTEN: '127.0.0.1:0', HSMB_ADMIN_LISTEN: '127.0.0.1:0', HSMB_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  // Only the tail is kept: a replica under load logs for as long as it runs.
  const keptLogChars = 65_536;
  let log = '';
  let started = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A broker that never said it was serving must not outlive the test (its pipe would keep the test process alive).
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
      reject(new Error(`broker did not start within ${String(options.startTimeoutMs ?? 120_000)} ms:\n${log}`));
    }, options.startTimeoutMs ?? 120_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      log = (log + chunk).slice(-keptLogChars);
      if (started) return;
      const serving = servingAddress(log);
      if (serving !== undefined) {
        started = true;
        clearTimeout(timer);
        resolve(serving);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`broker exited during start-up (${String(code ?? signal)}):\n${log}`));
    });
  });

  const signalGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    })());
  return {
    address,
    log: () => log,
    kill: async () => {
      signalGroup('SIGKILL');
      await exited;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
