import { isAbsolute, resolve } from 'node:path';

/** One KMS access key: its id, the file holding its secret, and the broker identity it signs in as. */
export interface KmsCredential {
  accessKeyId: string;
  /** Holds the secret access key; read at start-up, never logged. */
  secretFile: string;
  /** Policies and the audit trail see this identity. */
  identity: string;
}

/** The `kms:` section: the AWS KMS-compatible listener. */
export interface KmsSettings {
  /** host:port of the KMS listener (HSMB_KMS_LISTEN overrides). */
  listen: string;
  /** The region signatures must be scoped to and ARNs carry. */
  region: string;
  /** The account id ARNs carry. */
  account: string;
  credentials: KmsCredential[];
}

type Fail = (field: string, value: unknown, allowed: string) => never;

const listenPattern = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const regionPattern = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const accountPattern = /^\d{12}$/;
/** AWS access key ids: 16 to 128 characters of A-Z and 0-9. */
const accessKeyIdPattern = /^[A-Z0-9]{16,128}$/;

/** Whether a listen host is a loopback address, where plaintext is allowed. */
export function isLoopbackHost(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Reads and checks the `kms:` section (undefined when neither it nor
 * HSMB_KMS_LISTEN is set: the listener is off by default). Secrets are not
 * read here, only where they are: the broker reads them when it starts.
 * `tls` says whether the broker has a server certificate; without one the
 * listener may only be on loopback, as for gRPC.
 */
export function parseKmsSettings(raw: unknown, env: NodeJS.ProcessEnv, cwd: string, tls: boolean, fail: Fail): KmsSettings | undefined {
  if (raw === undefined && env['HSMB_KMS_LISTEN'] === undefined) return undefined;
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) fail('kms', raw, 'expected a mapping with listen, region, account and credentials');
  const section = (raw ?? {}) as Record<string, unknown>;
  const known = ['listen', 'region', 'account', 'credentials'];
  for (const key of Object.keys(section)) if (!known.includes(key)) fail(`kms.${key}`, section[key], `unknown setting; known settings are ${known.join(', ')}`);
  const listen = env['HSMB_KMS_LISTEN'] ?? section['listen'] ?? '127.0.0.1:8443';
  if (typeof listen !== 'string' || !listenPattern.test(listen) || Number(listen.slice(listen.lastIndexOf(':') + 1)) > 65535) {
    fail('kms.listen (HSMB_KMS_LISTEN)', listen, 'expected host:port with a port from 0 to 65535, e.g. 127.0.0.1:8443');
  }
  if (!tls && !isLoopbackHost(listen)) fail('kms.listen (HSMB_KMS_LISTEN)', listen, 'serving KMS beyond loopback needs TLS: configure tls.cert and tls.key (the KMS listener uses the broker certificate)');
  const region = section['region'];
  if (typeof region !== 'string' || !regionPattern.test(region)) fail('kms.region', region, 'expected an AWS-style region name such as eu-west-1');
  const account = section['account'];
  if (typeof account !== 'string' || !accountPattern.test(account)) fail('kms.account', account, 'expected a 12-digit account id written as a string, such as "111122223333"');
  const list = section['credentials'];
  if (!Array.isArray(list) || list.length === 0) fail('kms.credentials', list, 'expected a non-empty list of {accessKeyId, secretFile, identity}');
  const seen = new Set<string>();
  const credentials = list.map((entry: unknown, index): KmsCredential => {
    const at = `kms.credentials[${String(index)}]`;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) fail(at, entry, 'expected a mapping with accessKeyId, secretFile and identity');
    const record = entry as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!['accessKeyId', 'secretFile', 'identity'].includes(key)) fail(`${at}.${key}`, '<redacted>', 'unknown setting (its value is not shown: it may be a secret); secrets go in a file named by secretFile, never in the configuration');
    }
    const accessKeyId = record['accessKeyId'];
    if (typeof accessKeyId !== 'string' || !accessKeyIdPattern.test(accessKeyId)) fail(`${at}.accessKeyId`, accessKeyId, 'expected 16 to 128 characters of A-Z and 0-9');
    if (seen.has(accessKeyId)) fail(`${at}.accessKeyId`, accessKeyId, 'access key ids must be unique');
    seen.add(accessKeyId);
    const secretFile = record['secretFile'];
    if (typeof secretFile !== 'string' || secretFile === '') fail(`${at}.secretFile`, secretFile, 'expected the path of a file holding the secret access key');
    const identity = record['identity'];
    if (typeof identity !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(identity) || identity === 'anonymous' || identity.startsWith('(')) {
      fail(`${at}.identity`, identity, 'expected 1 to 256 printable characters naming the caller (a SPIFFE ID or name the access policy grants); "anonymous" is reserved');
    }
    return { accessKeyId, secretFile: isAbsolute(secretFile) ? secretFile : resolve(cwd, secretFile), identity };
  });
  return { listen, region, account, credentials };
}
