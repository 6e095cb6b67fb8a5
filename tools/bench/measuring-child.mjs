// The child side of the protocol in measuring-processes.mjs, shared by the
// gRPC load generator and the direct PKCS#11 worker.

/**
 * @typedef {object} Prepared
 * @property {unknown} info            sent with 'ready' (e.g. the PKCS#11 library version)
 * @property {() => Promise<unknown> | unknown} run   runs the bounded measurement, returns the report
 * @property {() => void} [close]      releases sessions and channels
 */

/**
 * Serves one measurement: prepares on 'init', measures on 'go', and exits
 * when the parent disconnects (or dies), so no measuring process outlives
 * the bench.
 * @param {(init: Record<string, any>) => Promise<Prepared> | Prepared} prepare
 */
export function serveMeasurement(prepare) {
  /** @type {Prepared | undefined} */
  let prepared;
  // With a callback, a parent that has already gone (it gave up on the run)
  // is not an uncaught 'error' here: the disconnect handler ends the process.
  const send = (message) => {
    if (process.connected) process.send?.(message, undefined, undefined, () => {});
  };
  process.on('message', async (message) => {
    try {
      if (message?.type === 'init') {
        prepared = await prepare(message);
        send({ type: 'ready', info: prepared.info });
      } else if (message?.type === 'go') {
        if (!prepared) throw new Error("'go' before 'init'");
        send({ type: 'result', report: await prepared.run() });
      }
    } catch (error) {
      send({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
    }
  });
  process.on('disconnect', () => {
    try {
      prepared?.close?.();
    } finally {
      process.exit(0);
    }
  });
}
