/**
 * Variables a worker process inherits from the broker. Everything else in
 * the broker's environment stays there: with `pin: {env: NAME}` the broker's
 * environment holds every appliance's PIN, and a worker must not see even
 * its own (it receives that over its IPC channel).
 */
const inherited = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'NODE_V8_COVERAGE',
  // Resolver settings (glibc): a network module's helper (p11-kit's socat)
  // must give up on the name of a vanished appliance as fast as the broker does.
  'RES_OPTIONS',
];
/** Locale settings (LC_ALL, LC_CTYPE, …) are harmless and affect how modules format messages. */
const inheritedPattern = /^LC_[A-Z]+$/;

/** libuv's default thread pool size. */
const defaultThreadPool = 4;

/**
 * The environment of one appliance's worker: the allow-listed harmless
 * variables of `parent`, plus that appliance's own module environment
 * (SOFTHSM2_CONF, P11_KIT_SERVER_ADDRESS, vendor configuration paths).
 * The thread pool, where concurrent PKCS#11 calls run, gets one thread per
 * session (at least libuv's default of 4) unless the module environment
 * sets UV_THREADPOOL_SIZE itself.
 */
export function workerEnvironment(parent: NodeJS.ProcessEnv, moduleEnv: Readonly<Record<string, string>>, sessions = 1): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && (inherited.includes(name) || inheritedPattern.test(name))) env[name] = value;
  }
  if (sessions > defaultThreadPool) env['UV_THREADPOOL_SIZE'] = String(sessions);
  return { ...env, ...moduleEnv };
}
