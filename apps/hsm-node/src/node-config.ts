import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Where the node's syslog events go (RFC 5424 over UDP). */
export interface SyslogTarget {
  host: string;
  port: number;
}

/** The appliance node's validated configuration. */
export interface NodeConfig {
  /** The appliance's name in events (defaults to the container's hostname). */
  id: string;
  /** The token label the broker's RFC 7512 URI names. */
  label: string;
  /** Held in memory only; read from a secret file or the environment, never argv. */
  soPin: string;
  userPin: string;
  modulePath: string;
  tokenDir: string;
  /** Sockets, the pid file and the current serial. */
  runDir: string;
  /** PKCS#11 (p11-kit remote) over TCP. */
  pkcs11Port: number;
  /** The clone endpoint (HTTPS, mutual TLS). */
  clonePort: number;
  cloneTls: { caFile: string; certFile: string; keyFile: string };
  syslog: SyslogTarget | undefined;
  /** Whether `hsm-node link-delay` may slow the PKCS#11 link (HSM_NODE_LINK_RELAY=1; a test fault, off by default). */
  linkRelay: boolean;
  /**
   * Certificate CNs (under the fleet CA) that may use the clone endpoint and
   * the PKCS#11 link (`HSM_NODE_CLONE_CLIENTS`, comma-separated; default `broker`). Other
   * fleet members, appliances included, are refused: one compromised node's
   * certificate must not export keys from, or enroll keys into, another.
   */
  cloneClients: ReadonlySet<string>;
}

/** A configuration value that is not acceptable; the message names the variable and the allowed values. */
export class NodeConfigError extends Error {
  override readonly name = 'NodeConfigError';
}

function port(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new NodeConfigError(`${name}: ${JSON.stringify(value)} is not valid; expected a port from 1 to 65535`);
  return n;
}

/**
 * A PIN from `${name}_FILE` (a mounted secret) or `${name}`. The variable is
 * removed from this process's environment once read, so no child inherits it.
 */
function secret(env: NodeJS.ProcessEnv, name: string): string {
  const file = env[`${name}_FILE`];
  let value: string | undefined;
  if (file) {
    try {
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error: unknown) {
      throw new NodeConfigError(`${name}_FILE: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else {
    value = env[name];
  }
  delete env[name];
  if (!value || value.length < 4 || value.length > 255) {
    throw new NodeConfigError(`${name}_FILE or ${name}: expected a PIN of 4 to 255 characters (the value is not shown)`);
  }
  return value;
}

function syslogTarget(value: string | undefined): SyslogTarget | undefined {
  if (!value) return undefined;
  const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(value);
  if (!match) throw new NodeConfigError(`HSM_NODE_SYSLOG: ${JSON.stringify(value)} is not valid; expected host:port of a UDP syslog collector`);
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port: port('HSM_NODE_SYSLOG', match[2], 514) };
}

/** Parses HSM_NODE_CLONE_CLIENTS: comma-separated certificate CNs, `broker` when unset. */
function cloneClientsOf(value: string | undefined): ReadonlySet<string> {
  const names = (value ?? 'broker').split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new NodeConfigError('HSM_NODE_CLONE_CLIENTS: "" is not valid; expected comma-separated certificate CNs, e.g. broker');
  return new Set(names);
}

/** Reads and checks the node's configuration from its environment, once. */
export function loadNodeConfig(env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const id = env['HSM_NODE_ID'] || hostname();
  const label = env['HSM_NODE_TOKEN_LABEL'] || id;
  if (Buffer.byteLength(label) > 32) throw new NodeConfigError(`HSM_NODE_TOKEN_LABEL: ${JSON.stringify(label)} is not valid; token labels are 1 to 32 bytes`);
  const tlsDir = env['HSM_NODE_TLS_DIR'] || '/run/secrets';
  return {
    id,
    label,
    soPin: secret(env, 'HSM_NODE_SO_PIN'),
    userPin: secret(env, 'HSM_NODE_USER_PIN'),
    modulePath: env['HSM_NODE_MODULE'] || '/usr/lib/softhsm/libsofthsm2.so',
    tokenDir: env['HSM_NODE_TOKEN_DIR'] || '/var/lib/hsm-node/tokens',
    runDir: env['HSM_NODE_RUN_DIR'] || '/run/hsm-node',
    pkcs11Port: port('HSM_NODE_PKCS11_PORT', env['HSM_NODE_PKCS11_PORT'], 5696),
    clonePort: port('HSM_NODE_CLONE_PORT', env['HSM_NODE_CLONE_PORT'], 5697),
    cloneTls: {
      caFile: env['HSM_NODE_TLS_CA'] || `${tlsDir}/fleet-ca.pem`,
      certFile: env['HSM_NODE_TLS_CERT'] || `${tlsDir}/${id}.pem`,
      keyFile: env['HSM_NODE_TLS_KEY'] || `${tlsDir}/${id}.key`,
    },
    syslog: syslogTarget(env['HSM_NODE_SYSLOG']),
    linkRelay: env['HSM_NODE_LINK_RELAY'] === '1',
    cloneClients: cloneClientsOf(env['HSM_NODE_CLONE_CLIENTS']),
  };
}
