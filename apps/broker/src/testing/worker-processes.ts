import { readFileSync, readdirSync } from 'node:fs';

/** What /proc showed of one worker process. */
export interface WorkerProcessView {
  pid: number;
  argv: string[];
  env: Record<string, string>;
}

function readNul(path: string): string[] {
  return readFileSync(path, 'latin1').split('\0').filter((entry) => entry !== '');
}

/** The parent pid of `pid`, from /proc/<pid>/stat (the field after the parenthesised name). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every appliance worker process this process started that is alive now, read from /proc. */
export function readWorkerProcesses(): WorkerProcessView[] {
  const views: WorkerProcessView[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (parentOf(pid) !== process.pid) continue;
      const argv = readNul(`/proc/${entry}/cmdline`);
      if (!argv.some((arg) => arg.includes('appliance-worker-main'))) continue;
      const env = Object.fromEntries(
        readNul(`/proc/${entry}/environ`).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      );
      views.push({ pid, argv, env });
    } catch {
      // The process ended while being read.
    }
  }
  return views;
}

/**
 * Samples the worker processes every few milliseconds until stopped, so
 * short-lived ones (token initialisation, security-officer sessions for
 * enrollment, the backup HSM's sessions) are seen too.
 * @internal
 */
export function sampleWorkerProcesses(intervalMs = 5): { seen: Map<number, WorkerProcessView>; stop(): void } {
  const seen = new Map<number, WorkerProcessView>();
  const sample = (): void => {
    for (const view of readWorkerProcesses()) if (!seen.has(view.pid)) seen.set(view.pid, view);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    seen,
    stop() {
      clearInterval(timer);
      sample();
    },
  };
}
