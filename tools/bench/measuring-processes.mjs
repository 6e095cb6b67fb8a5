// Runs one scenario's measuring processes (load generators or direct PKCS#11
// workers) in lock step: each is started and prepared (channel connected,
// token logged in), and only when all are ready are they told to go, so the
// measured windows overlap and the sum of their rates is a real aggregate.
//
// Protocol over IPC:  parent → {type:'init', …}   child → {type:'ready', info}
//                     parent → {type:'go'}        child → {type:'result', report}
//                     child  → {type:'failed', error} at any point
import { fork } from 'node:child_process';
import { isRunning, own, waitForExit } from './owned-processes.mjs';

/**
 * @typedef {object} ProcessSpec
 * @property {Record<string, unknown>} init  sent once over IPC (PINs travel this way, never in argv)
 * @property {Record<string, string>} [env]  extra environment (SOFTHSM2_CONF must be set before the module loads)
 */

/**
 * @param {object} options
 * @param {URL} options.script
 * @param {ProcessSpec[]} options.processes
 * @param {Record<string, string>} options.baseEnv
 * @param {number} options.readyTimeoutMs
 * @param {number} options.runTimeoutMs  from 'go' until every result is in
 * @param {(pids: number[]) => Promise<unknown> | void} [options.onGo]  called right after 'go' is sent;
 *   the processes are kept alive until what it returns settles, so it can sample them (CPU) to the end
 * @returns {Promise<{ infos: unknown[], reports: any[] }>}
 */
export async function runMeasuringProcesses({ script, processes, baseEnv, readyTimeoutMs, runTimeoutMs, onGo }) {
  const children = processes.map((spec) => {
    const child = fork(script, [], {
      env: { ...baseEnv, ...spec.env },
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    own(child);
    return child;
  });
  try {
    const infos = await Promise.all(
      children.map((child, index) => {
        const ready = nextMessage(child, 'ready', readyTimeoutMs);
        child.send({ type: 'init', ...processes[index].init });
        return ready.then((message) => message.info);
      }),
    );
    const results = children.map((child) => nextMessage(child, 'result', runTimeoutMs));
    for (const child of children) child.send({ type: 'go' });
    const observed = onGo?.(children.map((child) => /** @type {number} */ (child.pid)));
    const reports = (await Promise.all(results)).map((message) => message.report);
    await observed;
    return { infos, reports };
  } finally {
    await endAll(children);
  }
}

/**
 * Waits for a message of `type`; a 'failed' message, an exit or the timeout rejects.
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} type
 * @param {number} timeoutMs
 */
function nextMessage(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message) => {
      if (message?.type === type) {
        done();
        resolve(message);
      } else if (message?.type === 'failed') {
        done();
        reject(new Error(`measuring process ${child.pid}: ${message.error}`));
      }
    };
    const onExit = (code, signal) => {
      done();
      reject(new Error(`measuring process ${child.pid} exited (${signal ?? code}) before sending '${type}'`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`measuring process ${child.pid} sent no '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * Disconnects every child (they exit on disconnect), then kills any that
 * linger: a process stuck in a native call does not read its IPC channel.
 * @param {import('node:child_process').ChildProcess[]} children
 */
async function endAll(children) {
  for (const child of children) {
    if (child.connected) child.disconnect();
  }
  await Promise.all(
    children.map(async (child) => {
      if (await waitForExit(child, 5000)) return;
      if (isRunning(child)) child.kill('SIGKILL');
      await waitForExit(child, 5000);
    }),
  );
}
