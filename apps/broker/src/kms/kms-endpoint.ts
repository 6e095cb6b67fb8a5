import { readFileSync, statSync } from 'node:fs';
import type { Fleet } from '@hsm-broker/fleet';
import { SqliteAliasStore } from '@hsm-broker/keys';
import type { AliasStore, KeyRegistry, KeyStore, RegistryRebuild } from '@hsm-broker/keys';
import type { AuditTrail } from '../audit-trail.js';
import type { CallPipeline } from '../call-pipeline.js';
import { ConfigError } from '../config-error.js';
import { cryptoService } from '../crypto-service.js';
import { keyService } from '../key-service.js';
import type { Logger } from '../logger.js';
import { kmsAliasOperations } from './kms-alias-operations.js';
import { kmsPipeline } from './kms-call.js';
import type { KmsSettings } from './kms-config.js';
import { kmsCryptoOperations } from './kms-crypto-operations.js';
import { kmsKeyOperations } from './kms-key-operations.js';
import { startKmsListener } from './kms-listener.js';
import type { KmsListener } from './kms-listener.js';
import { SigV4Verifier } from './sigv4-verifier.js';

/**
 * KMS API operations this endpoint does not offer: answered
 * UnsupportedOperationException (not UnknownOperationException), so a
 * client learns the operation is real but not here.
 */
export const unsupportedKmsOperations: ReadonlySet<string> = new Set([
  'ConnectCustomKeyStore', 'CreateCustomKeyStore', 'DeleteCustomKeyStore', 'DescribeCustomKeyStores', 'DisconnectCustomKeyStore', 'UpdateCustomKeyStore',
  'CreateGrant', 'ListGrants', 'ListRetirableGrants', 'RetireGrant', 'RevokeGrant',
  'GetKeyPolicy', 'PutKeyPolicy', 'ListKeyPolicies',
  'TagResource', 'UntagResource', 'ListResourceTags',
  'UpdateKeyDescription', 'ReplicateKey', 'UpdatePrimaryRegion',
  'GetParametersForImport', 'ImportKeyMaterial', 'DeleteImportedKeyMaterial',
  'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'DeriveSharedSecret', 'ListKeyRotations',
]);

/** What the KMS endpoint is built from. */
export interface KmsEndpointOptions {
  settings: KmsSettings;
  /** The broker's server certificate and key files; undefined for loopback plaintext. */
  tls: { certFile: string; keyFile: string } | undefined;
  registry: KeyRegistry;
  /** The key store: a key it no longer holds (destroyed) loses its aliases. */
  store: KeyStore;
  fleet: Fleet;
  enrolled: ReadonlySet<string>;
  /** Registry recovery, which the gRPC KeyService serves beside the key operations. */
  rebuild: RegistryRebuild;
  /** The broker's call pipeline (request checks, policy, quotas, audit). */
  pipeline: CallPipeline;
  /** The metadata database file; aliases are kept in it. */
  databaseFile: string;
  audit: AuditTrail;
  log: Logger;
  clock?: () => number;
}

/** A running KMS endpoint. */
export interface RunningKmsEndpoint extends KmsListener {
  /** Stops listening and closes the alias store. */
  close(): Promise<void>;
}

function readSecret(path: string, field: string, log: Logger): string {
  let secret: string;
  try {
    if ((statSync(path).mode & 0o077) !== 0) log.warn('a KMS secret file is readable by other users; make it mode 0600', { field, file: path });
    secret = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error: unknown) {
    throw new ConfigError(`${field}: cannot read the secret file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (secret.length < 16 || /[\s]/.test(secret)) throw new ConfigError(`${field}: the secret in ${path} must be at least 16 characters with no white space`);
  return secret;
}

function readPem(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error: unknown) {
    throw new ConfigError(`${field}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Removes the aliases of a key once the store no longer holds it, as AWS
 * KMS does when a key's deletion completes: ListAliases never shows an
 * alias of a destroyed key, and its name is free again. Keys destroyed
 * while the endpoint was off (or before this existed) are found at start
 * and whenever the store says changes may have been missed. Returns a
 * function that stops listening.
 */
function forgetAliasesOfDestroyedKeys(aliases: AliasStore, store: KeyStore, log: Logger): () => void {
  const forget = (keyId: string): void => {
    if (store.getKey(keyId) !== undefined) return;
    const removed = aliases.deleteAliasesOf(keyId);
    if (removed > 0) log.info('aliases of a destroyed key removed', { keyId, aliases: removed });
  };
  const forgetAll = (): void => {
    const targets = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = aliases.listAliases(after, 500);
      for (const alias of page) targets.add(alias.targetKeyId);
      if (page.length < 500) break;
      after = page[page.length - 1]?.aliasName;
    }
    for (const keyId of targets) forget(keyId);
  };
  forgetAll();
  return store.onKeyChanged((keyId) => (keyId === undefined ? forgetAll() : forget(keyId)));
}

/**
 * Starts the AWS KMS-compatible endpoint: a second front door onto the same
 * registry, fleet, policy, quotas and audit trail as the gRPC API. Secrets
 * are read here, once; a missing or weak one stops the broker.
 */
export async function startKmsEndpoint(options: KmsEndpointOptions): Promise<RunningKmsEndpoint> {
  const { settings, log } = options;
  const secrets = new Map<string, string>();
  const identities = new Map<string, string>();
  settings.credentials.forEach((credential, index) => {
    secrets.set(credential.accessKeyId, readSecret(credential.secretFile, `kms.credentials[${String(index)}].secretFile`, log));
    identities.set(credential.accessKeyId, credential.identity);
  });
  const tls = options.tls ? { cert: readPem(options.tls.certFile, 'tls.cert'), key: readPem(options.tls.keyFile, 'tls.key') } : undefined;
  const aliases = new SqliteAliasStore(options.databaseFile);
  const stopForgetting = forgetAliasesOfDestroyedKeys(aliases, options.store, log);
  const pipeline = kmsPipeline(options.pipeline);
  const deps = { scope: { region: settings.region, account: settings.account }, aliases };
  const operations = {
    ...kmsCryptoOperations(cryptoService(options.registry, pipeline), deps),
    ...kmsKeyOperations(keyService(options.registry, options.fleet, options.enrolled, pipeline, options.rebuild), deps),
    ...kmsAliasOperations(options.registry, pipeline, deps, options.clock),
  };
  let listener: KmsListener;
  try {
    listener = await startKmsListener({
      listen: settings.listen,
      tls,
      // Signatures are checked against the wall clock, whatever clock key lifecycles run on.
      verifier: new SigV4Verifier(secrets, settings.region),
      identities,
      operations,
      unsupported: unsupportedKmsOperations,
      audit: options.audit,
      log,
    });
  } catch (error: unknown) {
    stopForgetting();
    aliases.close();
    throw error;
  }
  log.info('KMS-compatible endpoint listening', { url: listener.url, region: settings.region, account: settings.account, accessKeys: settings.credentials.length });
  if (!tls) log.warn('KMS ENDPOINT IN PLAINTEXT ON LOOPBACK: configure tls.cert and tls.key to serve it over TLS', { url: listener.url });
  return {
    ...listener,
    async close() {
      await listener.close();
      stopForgetting();
      aliases.close();
    },
  };
}
