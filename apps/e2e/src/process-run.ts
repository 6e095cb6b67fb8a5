import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The workspace root (this file is compiled to apps/e2e/dist/). */
export const workspaceRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** How a finished child process ended, with everything it wrote. */
export interface ProcessResult {
  /** Exit status, or null when a signal ended it. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** One command of a run or a pipeline. */
export interface CommandLine {
  command: string;
  args: readonly string[];
}

/** Options for {@link runProcess} and {@link runPipeline}. */
export interface RunOptions {
  /** Written to the (first) process's stdin, which is then closed. */
  input?: Uint8Array | string;
  /** Killed (SIGKILL) after this long; the run then rejects. Default: 60 s. */
  timeoutMs?: number;
  /** Variables added to the (filtered) environment of every process. */
  env?: Readonly<Record<string, string>>;
}

/**
 * Runs one command to completion from the workspace root. Rejects only when
 * the process cannot be started or outlives its timeout; a non-zero exit is
 * a result, for the test to judge.
 */
export async function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const [result] = await runPipeline([{ command, args }], options);
  if (result === undefined) throw new Error(`${command}: no result`);
  return result;
}

/**
 * Runs commands as a shell pipeline does: each one's stdout is connected to
 * the next one's stdin while they run. Resolves with one result per command;
 * `stdout` is empty for every command but the last, since it went down the
 * pipe.
 */
export function runPipeline(stages: readonly CommandLine[], options: RunOptions = {}): Promise<ProcessResult[]> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const children: ChildProcess[] = stages.map((stage) =>
    spawn(stage.command, [...stage.args], {
      cwd: workspaceRoot,
      env: { ...childEnv(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const finished = children.map(
    (child, index) =>
      new Promise<ProcessResult>((resolve, reject) => {
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const next = children[index + 1];
        if (next?.stdin) child.stdout?.pipe(next.stdin);
        else child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
        child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
        child.on('error', reject);
        // 'close', not 'exit': only then have the output streams ended.
        child.on('close', (status, signal) =>
          resolve({ status, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') }),
        );
      }),
  );
  // A process that exits without reading all of its input closes the pipe;
  // that is the process's business, not a failure of the run.
  for (const child of children) child.stdin?.on('error', () => undefined);
  const first = children[0]?.stdin;
  if (first) {
    if (options.input === undefined) first.end();
    else first.end(options.input);
  }

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const child of children) child.kill('SIGKILL');
      const line = stages.map((stage) => [stage.command, ...stage.args].join(' ')).join(' | ');
      reject(new Error(`'${line}' did not finish within ${String(timeoutMs)} ms`));
    }, timeoutMs);
  });
  return Promise.race([Promise.all(finished), timedOut]).finally(() => clearTimeout(timer));
}

// Settings from the developer's shell (HSMB_ADDRESS, HSMB_TLS_*) would change
// where hsmctl connects and how; the tests say everything explicitly.
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HSMB_')));
}
