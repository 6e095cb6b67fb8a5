import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from '../logger.js';

/** The files of the broker's TLS identity and of the CA its clients' certificates must chain to. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile: string;
}

/** Why the TLS files cannot be used; the message names the file. */
export class TlsMaterialError extends Error {
  override readonly name = 'TlsMaterialError';
}

function readMaterial(files: TlsFiles): SecureContextOptions {
  const read = (path: string, field: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error: unknown) {
      throw new TlsMaterialError(`${field}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const cert = read(files.certFile, 'tls.cert');
  const key = read(files.keyFile, 'tls.key');
  const ca = read(files.clientCaFile, 'tls.clientCa');
  for (const [field, pem] of [['tls.cert', cert], ['tls.clientCa', ca]] as const) {
    try {
      new X509Certificate(pem);
    } catch (error: unknown) {
      throw new TlsMaterialError(`${field}: not a PEM certificate: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const options: SecureContextOptions = { cert, key, ca, minVersion: 'TLSv1.3' };
  try {
    // Catches a key that does not match the certificate before any handshake sees it.
    createSecureContext(options);
  } catch (error: unknown) {
    throw new TlsMaterialError(`tls.cert/tls.key: unusable together: ${error instanceof Error ? error.message : String(error)}`);
  }
  return options;
}

/**
 * Server credentials for mutual TLS 1.3 that follow their files: when the
 * certificate, key or client CA changes on disk, new handshakes use the new
 * material without a restart (grpc-js calls `setSecureContext` on its
 * server for every update). A half-written or mismatched set is refused
 * and logged, and the previous material stays in use. Clients without a
 * certificate, or with one that is expired, not yet valid or from another
 * CA, fail the handshake.
 *
 * grpc-js' own `FileWatcherCertificateProvider` drops the credentials
 * (refusing every connection) when a read fails mid-rotation and cannot pin
 * TLS 1.3, hence this class.
 */
export class ReloadingServerCredentials extends ServerCredentials {
  readonly #files: TlsFiles;
  readonly #log: Logger;
  #current: SecureContextOptions;
  #watching = false;

  /** Reads the files once; throws {@link TlsMaterialError} when they cannot serve. */
  constructor(files: TlsFiles, log: Logger) {
    const material = readMaterial(files);
    super({ requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, material);
    this.#files = files;
    this.#log = log;
    this.#current = material;
  }

  /** Re-reads the files now; returns whether the new material was taken. */
  reload(): boolean {
    let material: SecureContextOptions;
    try {
      material = readMaterial(this.#files);
    } catch (error: unknown) {
      this.#log.error('TLS files not reloaded; the previous certificates stay in use', { error: error instanceof Error ? error.message : String(error) });
      return false;
    }
    const same = ['cert', 'key', 'ca'].every((field) => Buffer.compare(material[field as 'cert'] as Buffer, this.#current[field as 'cert'] as Buffer) === 0);
    if (same) return false;
    this.#current = material;
    this.updateSecureContextOptions(material);
    const certificate = new X509Certificate(material.cert as Buffer);
    this.#log.info('TLS certificates reloaded; new handshakes use them', { subject: certificate.subject, validTo: certificate.validTo, fingerprint256: certificate.fingerprint256 });
    return true;
  }

  /** Polls the files every `intervalMs` (stat only; renames and in-place writes both count). */
  watch(intervalMs: number): void {
    if (this.#watching) return;
    this.#watching = true;
    for (const path of new Set([this.#files.certFile, this.#files.keyFile, this.#files.clientCaFile])) {
      watchFile(path, { interval: intervalMs, persistent: false }, () => this.reload());
    }
  }

  /** Stops watching the files. */
  close(): void {
    if (!this.#watching) return;
    this.#watching = false;
    for (const path of new Set([this.#files.certFile, this.#files.keyFile, this.#files.clientCaFile])) unwatchFile(path);
  }

  override _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}
