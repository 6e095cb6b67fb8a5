import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createCertificateAuthority, issueCertificate } from '@hsm-broker/dev-pki';
import type { IssuedCertificate } from '@hsm-broker/dev-pki';
import { BrokerError, Code } from '@hsm-broker/errors';
import { AtomicFile } from './atomic-file.js';
import { UsageError } from './command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from './command.js';
import { encodeText, writeOutput } from './output-format.js';

const day = 86_400_000;
const defaultDir = 'pki';
const defaultHosts = ['localhost', '127.0.0.1', '::1'];
const spiffePattern = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;
const namePattern = /^[A-Za-z0-9._-]{1,64}$/;

const common = {
  dir: { type: 'string', valueName: 'DIR', description: `Directory of the CA and certificates (default ./${defaultDir})` },
  days: { type: 'string', valueName: 'N', description: 'Validity in days (default 365 for the CA, 90 for certificates)' },
  force: { type: 'boolean', description: 'Replace files that exist' },
} as const;

/** Writes a certificate (0644 is enough, but one mode keeps it simple) and its key (0600), each whole or not at all. */
async function writePair(dir: string, name: string, issued: IssuedCertificate, overwrite: boolean): Promise<string[]> {
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}.key`);
  const cert = await AtomicFile.create(certPath, { overwrite, flag: '--dir' });
  const key = await AtomicFile.create(keyPath, { overwrite, flag: '--dir' }).catch(async (error: unknown) => {
    await cert.discard();
    throw error;
  });
  await cert.commit(Buffer.from(issued.certificatePem));
  await key.commit(Buffer.from(issued.privateKeyPem));
  return [certPath, keyPath];
}

function validity(context: CommandContext, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const days = context.options.integer('days', { min: 1, max: 3650 }) ?? defaultDays;
  // A minute of back-dating absorbs clock skew between the machines.
  const now = Date.now();
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + days * day) };
}

async function readCa(dir: string): Promise<IssuedCertificate> {
  try {
    const [certificatePem, privateKeyPem] = await Promise.all([readFile(join(dir, 'ca.pem'), 'utf8'), readFile(join(dir, 'ca.key'), 'utf8')]);
    return { certificatePem, privateKeyPem };
  } catch (error: unknown) {
    throw new BrokerError(Code.FAILED_PRECONDITION, `--dir: no development CA in ${dir} (run hsmctl pki init first): ${error instanceof Error ? error.message : String(error)}`, { reason: 'NO_CA' });
  }
}

const pkiInitCommand: CommandSpec = {
  path: ['pki', 'init'],
  synopsis: '[--dir DIR] [--host NAME]... [--days N] [--force]',
  summary: 'Create a development CA and the broker\'s server certificate',
  description:
    'Writes DIR/ca.pem and DIR/ca.key (the CA), and DIR/server.pem and DIR/server.key (the broker\'s ' +
    'certificate for localhost, 127.0.0.1 and ::1 unless --host names others). Keys are ECDSA P-256, ' +
    'written with mode 0600. Point the broker at them with tls.cert, tls.key and tls.clientCa, then give ' +
    'each caller a certificate with hsmctl pki issue. For development and tests: a production CA keeps its ' +
    'key in an HSM or a managed PKI, never in a file.',
  options: {
    ...common,
    host: { type: 'string', multiple: true, valueName: 'NAME', description: 'DNS name or IP address of the broker (repeatable)' },
  },
  async run(context) {
    const dir = context.options.string('dir') ?? defaultDir;
    const hosts = context.options.list('host');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const overwrite = context.options.flag('force');
    const ca = createCertificateAuthority({ commonName: 'hsm-broker development CA', ...validity(context, 365) });
    const written = await writePair(dir, 'ca', ca, overwrite);
    const server = issueCertificate({ issuer: ca, commonName: 'hsm-broker', hosts: hosts.length > 0 ? hosts : defaultHosts, usage: 'server', ...validity(context, 90) });
    written.push(...(await writePair(dir, 'server', server, overwrite)));
    const lines = [
      ...written.map((path) => `wrote ${path}`),
      '',
      'Broker settings (HSMB_CONFIG):',
      `  tls: { cert: ${join(dir, 'server.pem')}, key: ${join(dir, 'server.key')}, clientCa: ${join(dir, 'ca.pem')} }`,
      '  access: { policyFile: policy.yaml }',
      'Next: hsmctl pki issue spiffe://corp/vpc-a/payments',
    ];
    await writeOutput(context.io.stdout, undefined, encodeText(`${lines.join('\n')}\n`));
    return ExitCode.ok;
  },
};

const pkiIssueCommand: CommandSpec = {
  path: ['pki', 'issue'],
  synopsis: 'IDENTITY [--dir DIR] [--name NAME] [--days N] [--force]',
  summary: 'Issue a client certificate for a SPIFFE ID (or a plain name)',
  description:
    'IDENTITY is a SPIFFE ID such as spiffe://corp/vpc-a/payments (put in the URI SAN, which the broker ' +
    'takes as the caller\'s identity) or a plain name (put in the subject CN). Signs with DIR/ca.pem and ' +
    'DIR/ca.key and writes DIR/NAME.pem and DIR/NAME.key (mode 0600); NAME defaults to the last path ' +
    'segment of the SPIFFE ID. Use them with --tls-ca DIR/ca.pem --tls-cert DIR/NAME.pem --tls-key DIR/NAME.key.',
  positionals: ['IDENTITY'],
  options: {
    ...common,
    name: { type: 'string', valueName: 'NAME', description: 'File name without extension (default: from IDENTITY)' },
  },
  async run(context) {
    const [identity = ''] = context.positionals;
    const spiffe = identity.startsWith('spiffe://');
    if (spiffe && !spiffePattern.test(identity)) {
      throw new UsageError(`IDENTITY: "${identity.slice(0, 80)}" is not a SPIFFE ID (spiffe://trust-domain/path, lower-case trust domain, path segments of A-Z a-z 0-9 . _ -)`);
    }
    const commonName = spiffe ? identity.slice(identity.lastIndexOf('/') + 1) : identity;
    if (!namePattern.test(commonName)) throw new UsageError(`IDENTITY: "${identity.slice(0, 80)}" must be a SPIFFE ID or a name of 1-64 characters of A-Z a-z 0-9 . _ -`);
    const name = context.options.string('name') ?? commonName;
    if (!namePattern.test(name) || name === 'ca' || name === 'server') throw new UsageError(`--name: "${name.slice(0, 80)}" must be 1-64 characters of A-Z a-z 0-9 . _ - and not ca or server`);
    const dir = context.options.string('dir') ?? defaultDir;
    const ca = await readCa(dir);
    const issued = issueCertificate({ issuer: ca, commonName, ...(spiffe ? { uris: [identity] } : {}), usage: 'client', ...validity(context, 90) });
    const written = await writePair(dir, name, issued, context.options.flag('force'));
    const lines = [...written.map((path) => `wrote ${path}`), `identity: ${identity}`, `use: --tls-ca ${join(dir, 'ca.pem')} --tls-cert ${written[0] ?? ''} --tls-key ${written[1] ?? ''}`];
    await writeOutput(context.io.stdout, undefined, encodeText(`${lines.join('\n')}\n`));
    return ExitCode.ok;
  },
};

/** `hsmctl pki …`: a development CA and certificates for mutual TLS. */
export const pkiCommands: readonly CommandSpec[] = [pkiInitCommand, pkiIssueCommand];
