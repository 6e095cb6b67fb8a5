import type { ConfigFailure } from './audit-config.js';

/** The admin HTTP listener's settings (the `admin:` section). */
export interface AdminSettings {
  /** host:port for metrics, health and the dashboard; undefined when turned off (`off`). */
  listen: string | undefined;
}

/** Loopback by default: the admin listener has no authentication of its own. */
export const defaultAdminListen = '127.0.0.1:9464';

const hostPortPattern = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether `listen` (host:port) stays on this machine. */
export function isLoopbackListen(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return loopbackHosts.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Parses `admin.listen` (`HSMB_ADMIN_LISTEN` overrides it): host:port, or
 * `off` to serve no admin listener at all.
 */
export function parseAdminSettings(value: unknown, env: NodeJS.ProcessEnv, fail: ConfigFailure): AdminSettings {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) fail('admin', value, 'expected a mapping with listen');
  const raw = (value ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (key !== 'listen') fail(`admin.${key}`, raw[key], 'unknown setting; known settings are listen');
  const listen = env['HSMB_ADMIN_LISTEN'] ?? raw['listen'] ?? defaultAdminListen;
  const field = 'admin.listen (HSMB_ADMIN_LISTEN)';
  if (listen === 'off') return { listen: undefined };
  if (typeof listen !== 'string') return fail(field, listen, 'expected host:port, e.g. 127.0.0.1:9464, or off');
  const match = hostPortPattern.exec(listen);
  if (!match || Number(match[2]) > 65535) fail(field, listen, 'expected host:port with a port from 0 to 65535, e.g. 127.0.0.1:9464, or off');
  return { listen };
}
