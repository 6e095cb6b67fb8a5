import { constants, createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, generateKeyPairSync, privateEncrypt, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { CallOptions, ExecuteOptions, Executed, OfficerSession, WorkerArgs, WorkerOperation, WorkerResult } from '@hsm-broker/fleet';
import type { OfficerFleetPort, ReplicaTarget } from '../fleet-port.js';

/** One key object on an in-memory appliance. */
interface HeldKey {
  spec: string;
  /** The secret (AES, HMAC) or the PKCS#8 DER private key (RSA). */
  material: Buffer;
  publicKeySpki?: Buffer;
}

/** One call an in-memory appliance received. */
export interface FakeCall {
  applianceId: string;
  op: string;
  label: string | undefined;
}

const gcmTagBytes = 16;

/** MGF1 (RFC 8017 B.2.1). */
function mgf1(seed: Buffer, length: number, hash: string): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * createHash(hash).digest().length < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/**
 * RSASSA-PSS over a digest the caller made, as an HSM's CKM_RSA_PKCS_PSS
 * does (node:crypto always hashes what it signs): EMSA-PSS encoding with a
 * salt as long as the hash (RFC 8017 9.1.1), then the raw RSA operation.
 */
function signDigestPss(privateKeyDer: Buffer, hash: string, digest: Buffer): Buffer {
  const key = createPrivateKey({ key: privateKeyDer, format: 'der', type: 'pkcs8' });
  const modulusBits = key.asymmetricKeyDetails?.modulusLength ?? 2048;
  const emLength = Math.ceil((modulusBits - 1) / 8);
  const salt = randomBytes(digest.length);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLength - salt.length - h.length - 2), Buffer.from([1]), salt]);
  const mask = mgf1(h, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] ?? 0) ^ (mask[i] ?? 0);
  db[0] = (db[0] ?? 0) & (0xff >> (8 * emLength - (modulusBits - 1)));
  const encoded = Buffer.concat([db, h, Buffer.from([0xbc])]);
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, encoded.length < modulusBits / 8 ? Buffer.concat([Buffer.alloc(1), encoded]) : encoded);
}

function rsaKeyPair(): { material: Buffer; publicKeySpki: Buffer } {
  const { privateKey, publicKey }: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { material: privateKey.export({ format: 'der', type: 'pkcs8' }), publicKeySpki: publicKey.export({ format: 'der', type: 'spki' }) };
}

function unavailable(applianceId: string): BrokerError {
  return new BrokerError(Code.UNAVAILABLE, `appliance ${applianceId} is unreachable`, { reason: 'APPLIANCE_UNAVAILABLE', failureClass: 'appliance', retryable: true });
}

/**
 * A fleet of appliances kept in memory, doing AES-256-GCM, HMAC-SHA-256 and
 * RSA-PSS with node:crypto, for unit tests of what sits on the fleet port.
 * It has no security officers: KEK enrollment is left to the SoftHSM suites.
 * Tests take appliances out of service (`available`), make them fail every
 * call (`failing`), make them store damaged copies (`corrupting`), and read
 * what each holds (`objects`) and every call made (`calls`).
 * @internal
 */
export class InMemoryFleet implements OfficerFleetPort {
  readonly appliances: (ReplicaTarget & { available: boolean })[];
  /** Key objects by appliance id, then label. */
  readonly objects = new Map<string, Map<string, HeldKey>>();
  /** Appliances that reject every call as unreachable while staying "available" (a failure routing has not noticed yet). */
  readonly failing = new Set<string>();
  /** Appliances that store a damaged copy when they unwrap, as a faulty HSM would. */
  readonly corrupting = new Set<string>();
  readonly calls: FakeCall[] = [];
  /** Calls to an appliance listed here wait until its promise settles (a slow appliance). */
  readonly holds = new Map<string, Promise<void>>();

  /** `zones` maps each appliance id to its zone, in order. */
  constructor(zones: Record<string, string>) {
    this.appliances = Object.entries(zones).map(([id, zone]) => ({ id, zone, available: true }));
    for (const id of Object.keys(zones)) this.objects.set(id, new Map());
  }

  appliance(id: string): ReplicaTarget {
    const found = this.appliances.find((appliance) => appliance.id === id);
    if (!found) throw new BrokerError(Code.NOT_FOUND, `no appliance ${id}`, { reason: 'APPLIANCE_NOT_FOUND' });
    return found;
  }

  /** Takes an appliance out of service (false) or puts it back. */
  setAvailable(applianceId: string, available: boolean): void {
    const found = this.appliances.find((appliance) => appliance.id === applianceId);
    if (!found) throw new Error(`no appliance ${applianceId}`);
    found.available = available;
  }

  hasOfficer(_applianceId: string): boolean {
    return false;
  }

  withOfficer<T>(applianceId: string, _body: (session: OfficerSession) => Promise<T>): Promise<T> {
    return Promise.reject(new BrokerError(Code.FAILED_PRECONDITION, `appliance ${applianceId} has no security officer in memory`, { reason: 'SO_PIN_MISSING' }));
  }

  /** Labels held by `applianceId`, sorted. */
  labelsOn(applianceId: string): string[] {
    return [...(this.objects.get(applianceId)?.keys() ?? [])].sort();
  }

  /** Calls of `op` so far, optionally only those to `applianceId`. */
  callsOf(op: string, applianceId?: string): FakeCall[] {
    return this.calls.filter((call) => call.op === op && (applianceId === undefined || call.applianceId === applianceId));
  }

  /** Tries the candidates in order, as the real router's failover would for idempotent calls; generateKey is never retried. */
  async execute<K extends WorkerOperation>(op: K, args: WorkerArgs<K>, options: ExecuteOptions = {}): Promise<Executed<WorkerResult<K>>> {
    const allowed = options.candidates ?? this.appliances.map((appliance) => appliance.id);
    const candidates = allowed.filter((id) => this.appliance(id).available);
    if (candidates.length === 0) throw new BrokerError(Code.UNAVAILABLE, `no appliance can serve ${op}`, { reason: 'NO_APPLIANCE', failureClass: 'appliance' });
    let lastError: unknown;
    for (const applianceId of candidates) {
      options.onAttempt?.(applianceId);
      try {
        return { result: await this.executeOn(applianceId, op, args), applianceId };
      } catch (error: unknown) {
        lastError = error;
        if (op === 'generateKey') break;
      }
    }
    throw BrokerError.from(lastError);
  }

  executeOn<K extends WorkerOperation>(applianceId: string, op: K, args: WorkerArgs<K>, _options: CallOptions = {}): Promise<WorkerResult<K>> {
    const fields = args as Record<string, unknown>;
    const label = typeof fields['label'] === 'string' ? fields['label'] : undefined;
    this.calls.push({ applianceId, op, label });
    if (!this.appliance(applianceId).available || this.failing.has(applianceId)) return Promise.reject(unavailable(applianceId));
    const run = (): Promise<WorkerResult<K>> => {
      try {
        return Promise.resolve(this.#run(applianceId, op, fields, label ?? '') as WorkerResult<K>);
      } catch (error: unknown) {
        return Promise.reject(BrokerError.from(error));
      }
    };
    const hold = this.holds.get(applianceId);
    return hold ? hold.then(run) : run();
  }

  #held(applianceId: string, label: string): HeldKey {
    const key = this.objects.get(applianceId)?.get(label);
    if (!key) throw new BrokerError(Code.NOT_FOUND, `${label} missing on ${applianceId}`, { reason: 'KEY_OBJECT_MISSING', failureClass: 'appliance' });
    return key;
  }

  #run(applianceId: string, op: string, args: Record<string, unknown>, label: string): unknown {
    const held = this.objects.get(applianceId) ?? new Map<string, HeldKey>();
    switch (op) {
      case 'generateKey': {
        const spec = String(args['spec']);
        if (spec === 'AES_256' || spec === 'HMAC_256') {
          held.set(label, { spec, material: randomBytes(32) });
          return {};
        }
        if (spec !== 'RSA_2048') throw new Error(`the in-memory fleet does not make ${spec} keys`);
        const pair = rsaKeyPair();
        held.set(label, { spec, ...pair });
        return { publicKeySpki: pair.publicKeySpki };
      }
      case 'wrapKey': {
        const key = this.#held(applianceId, label);
        return { wrapped: Buffer.from(key.material), ...(key.publicKeySpki ? { publicKeySpki: key.publicKeySpki } : {}) };
      }
      case 'unwrapKey': {
        const wrapped = args['key'] as { wrapped: Buffer; publicKeySpki?: Buffer };
        const spec = String(args['spec']);
        let material: Buffer = Buffer.from(wrapped.wrapped);
        if (this.corrupting.has(applianceId)) {
          if (spec === 'RSA_2048') material = rsaKeyPair().material;
          else material[0] = (material[0] ?? 0) ^ 0xff;
        }
        held.set(label, { spec, material, ...(wrapped.publicKeySpki ? { publicKeySpki: wrapped.publicKeySpki } : {}) });
        return null;
      }
      case 'destroyKey':
        return held.delete(label) ? 1 : 0;
      case 'listKeys': {
        const prefix = String(args['prefix']);
        return [...held.entries()]
          .filter(([name]) => name.startsWith(prefix))
          .map(([name, key]) => ({ label: name, objectClass: key.spec === 'RSA_2048' ? 'private' : 'secret' }));
      }
      case 'encrypt': {
        const cipher = createCipheriv('aes-256-gcm', this.#held(applianceId, label).material, args['iv'] as Buffer);
        cipher.setAAD(args['aad'] as Buffer);
        return Buffer.concat([cipher.update(args['plaintext'] as Buffer), cipher.final(), cipher.getAuthTag()]);
      }
      case 'decrypt': {
        const sealed = args['ciphertext'] as Buffer;
        const decipher = createDecipheriv('aes-256-gcm', this.#held(applianceId, label).material, args['iv'] as Buffer);
        decipher.setAAD(args['aad'] as Buffer);
        decipher.setAuthTag(sealed.subarray(sealed.length - gcmTagBytes));
        try {
          return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - gcmTagBytes)), decipher.final()]);
        } catch {
          throw new BrokerError(Code.INVALID_ARGUMENT, 'tag check failed', { reason: 'INVALID_CIPHERTEXT', failureClass: 'caller' });
        }
      }
      case 'generateMac':
        return createHmac(String(args['hash']), this.#held(applianceId, label).material).update(args['message'] as Buffer).digest();
      case 'verifyMac': {
        const mac = createHmac(String(args['hash']), this.#held(applianceId, label).material).update(args['message'] as Buffer).digest();
        return mac.equals(args['mac'] as Buffer);
      }
      case 'sign': {
        if (args['scheme'] !== 'rsa-pss') throw new Error(`the in-memory fleet signs only with rsa-pss, not ${String(args['scheme'])}`);
        return signDigestPss(this.#held(applianceId, label).material, String(args['hash']), args['digest'] as Buffer);
      }
      case 'generateRandom':
        return randomBytes(Number(args['length']));
      default:
        throw new Error(`the in-memory fleet does not do ${op}`);
    }
  }
}
