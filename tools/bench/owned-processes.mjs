// Every process the bench starts is recorded here, so that an interrupted or
// failed run can end exactly those processes and nothing else.

/** @type {Map<number, { child: import('node:child_process').ChildProcess, group: boolean }>} */
const owned = new Map();

/**
 * Records a child. `group` marks a child started as the leader of its own
 * process group (the broker), whose appliance workers are killed with it.
 * @param {import('node:child_process').ChildProcess} child
 * @param {{ group?: boolean }} [options]
 */
export function own(child, options = {}) {
  if (child.pid === undefined) return;
  const pid = child.pid;
  owned.set(pid, { child, group: options.group ?? false });
  child.once('exit', () => owned.delete(pid));
}

/** Whether a child has neither exited nor been reaped. */
export function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Sends `signal` to every recorded child that is still running. Synchronous,
 * so it also works from a process 'exit' handler.
 * @param {NodeJS.Signals} signal
 */
export function signalAll(signal) {
  for (const [pid, { child, group }] of owned) {
    if (!isRunning(child)) continue;
    try {
      process.kill(group ? -pid : pid, signal);
    } catch {
      // Already gone between the check and the signal.
    }
  }
}

/**
 * Resolves when `child` has exited, or after `timeoutMs` with false.
 * @param {import('node:child_process').ChildProcess} child
 * @param {number} timeoutMs
 * @returns {Promise<boolean>}
 */
export function waitForExit(child, timeoutMs) {
  if (!isRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
