// Starts and stops the echo server (echo-server-main.mjs), the gRPC floor.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { echoPath } from './bench-operations.mjs';
import { own, waitForExit } from './owned-processes.mjs';

/**
 * @typedef {{ address: string, pid: number, stop: () => Promise<void> }} StartedEchoServer
 */

/**
 * Starts the echo server and resolves once it has bound its port.
 * @param {Record<string, string | undefined>} env
 * @returns {Promise<StartedEchoServer>}
 */
export async function startEchoServer(env) {
  const child = spawn(process.execPath, [new URL('./echo-server-main.mjs', import.meta.url).pathname, echoPath], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  own(child);
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the echo server did not bind within 15 s')), 15_000);
    child.once('exit', (code) => reject(new Error(`the echo server exited (${code}) before binding`)));
    createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stdout) }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line).address);
    });
  });
  return {
    address,
    pid: /** @type {number} */ (child.pid),
    stop: async () => {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, 5000))) child.kill('SIGKILL');
    },
  };
}
