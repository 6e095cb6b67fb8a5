// Secrets of a containerised fleet, made once into a directory: the PINs
// (`so.pin`, `user.pin`) and a fleet CA with one certificate per service for
// the clone endpoints' mutual TLS. Used by the compose set-up and by the
// testcontainers harness. The CA's private key stays in `ca/`, which is never
// mounted into a container.
//
// Only Node built-ins and the openssl CLI here.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes what is missing under `dir`: `so.pin`, `user.pin`, `postgres.password`,
 * `postgres.pgpass`, `ca/fleet-ca.key`,
 * `fleet-ca.pem`, and `NAME.pem` + `NAME.key` for every name (certificate
 * for serverAuth and clientAuth, subjectAltName DNS:NAME). Idempotent.
 *
 * @param {string} dir
 * @param {string[]} names service names (hsm-a1, …, broker)
 */
export function ensureFleetSecrets(dir, names) {
  mkdirSync(join(dir, 'ca'), { recursive: true, mode: 0o700 });
  for (const pin of ['so.pin', 'user.pin']) {
    const path = join(dir, pin);
    // Files readable by the owner only; containers copy or read them as root.
    if (!existsSync(path)) writeFileSync(path, randomBytes(18).toString('base64url'), { mode: 0o600 });
  }
  // The compose `replicas` profile's PostgreSQL password, and the same in
  // libpq password-file form for the broker replicas (PGPASSFILE).
  const postgresPassword = join(dir, 'postgres.password');
  if (!existsSync(postgresPassword)) writeFileSync(postgresPassword, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const pgpass = join(dir, 'postgres.pgpass');
  if (!existsSync(pgpass)) {
    writeFileSync(pgpass, `postgres:5432:hsmb:hsmb:${readFileSync(postgresPassword, 'utf8').trim()}\n`, { mode: 0o600 });
  }
  const caKey = join(dir, 'ca', 'fleet-ca.key');
  const caCert = join(dir, 'fleet-ca.pem');
  if (!existsSync(caCert)) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '3650', '-subj', '/CN=hsm-broker fleet CA']);
  }
  for (const name of names) {
    const cert = join(dir, `${name}.pem`);
    if (existsSync(cert)) continue;
    const key = join(dir, `${name}.key`);
    const csr = join(dir, 'ca', `${name}.csr`);
    const ext = join(dir, 'ca', `${name}.ext`);
    writeFileSync(ext, `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '825', '-out', cert, '-extfile', ext]);
    rmSync(csr);
    rmSync(ext);
  }
}

function openssl(args) {
  const result = spawnSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
}
