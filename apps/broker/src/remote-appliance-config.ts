import { ConfigError } from './config-error.js';

// The parts of the configuration that describe appliances reached over the
// network, the way a Luna or CloudHSM client is configured: the PKCS#11
// module (p11-kit's client), its environment (P11_KIT_SERVER_ADDRESS), an
// RFC 7512 URI, a PIN source, a zone — and the node's clone endpoint, with
// the broker's fleet-CA client certificate (`cloneTls:`).

/** The broker's side of the clone endpoints' mutual TLS (files, read at start-up). */
export interface CloneTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

function fail(field: string, value: unknown, allowed: string): never {
  throw new ConfigError(`${field}: ${JSON.stringify(value)} is not valid; ${allowed}`);
}

/** An appliance's `clone:` URL (https://host:port), or undefined when it has none (a local token). */
export function parseCloneUrl(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return fail(field, value, 'expected https://host:port of the appliance node\'s clone endpoint');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(field, value, 'expected https://host:port of the appliance node\'s clone endpoint');
  }
  if (url.protocol !== 'https:' || url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
    fail(field, value, 'expected https://host:port with no path, query or credentials (the endpoint speaks only mutual TLS)');
  }
  return `https://${url.host}`;
}

/** The `cloneTls:` section: required as soon as one appliance has a clone endpoint. */
export function parseCloneTls(value: unknown, needed: boolean): CloneTlsFiles | undefined {
  if (value === undefined) {
    if (needed) fail('cloneTls', value, 'appliances with a clone endpoint need cloneTls: {ca, cert, key} (fleet CA and this broker\'s client certificate)');
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return fail('cloneTls', value, 'expected a mapping with ca, cert and key');
  const record = value as Record<string, unknown>;
  const known = new Set(['ca', 'cert', 'key']);
  for (const key of Object.keys(record)) if (!known.has(key)) fail(`cloneTls.${key}`, record[key], 'unknown setting; known settings are ca, cert, key');
  const file = (name: string): string => {
    const path = record[name];
    if (typeof path !== 'string' || !path.startsWith('/')) fail(`cloneTls.${name}`, path, 'expected an absolute path of a PEM file');
    return path;
  };
  return { caFile: file('ca'), certFile: file('cert'), keyFile: file('key') };
}
