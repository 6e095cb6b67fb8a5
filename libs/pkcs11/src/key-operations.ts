import { BrokerError, Code } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import type { Handle, PKCS11 } from 'pkcs11js';
import {
  curveFromParams,
  curveParams,
  ecdsaRawToDer,
  hashLength,
  publicKeyToSpki,
  spkiToPublicKey,
} from './asn1-encoding.js';
import type { HashName } from './asn1-encoding.js';
import { describeKeyObjects } from './key-inventory.js';
import type { KeyObjectDescription } from './key-inventory.js';
import {
  isAsymmetric,
  keyPairTemplates,
  publicKeyObjectTemplate,
  secretKeyTemplate,
  unwrappedPrivateTemplate,
  unwrappedSecretTemplate,
} from './key-templates.js';
import type { KeyMaterialSpec } from './key-templates.js';
import { mechanismName } from './mechanism-names.js';
import { decryptCall, encryptCall, macCall, macCheck, signCall, signatureRejected, verifyCall } from './crypto-calls.js';
import type { SignatureScheme } from './crypto-calls.js';
import { singlePart, singlePartConcurrently } from './single-part-call.js';
import type { SinglePartCall, SinglePartKind, SinglePartOutcome } from './single-part-call.js';
import { invoke, staleTokenView, staleViewReason } from './pkcs11-call.js';
import type { Pkcs11Token } from './pkcs11-token.js';

export type { SignatureScheme } from './crypto-calls.js';

/** A key object on a token, as inventory reports it. */
export interface KeyObjectInfo {
  label: string;
  objectClass: 'secret' | 'private' | 'public';
}

/** A key version in transit between HSMs: wrapped material plus the public half. */
export interface WrappedKey {
  /** Secret or private key wrapped under the fleet KEK with CKM_AES_KEY_WRAP_PAD. */
  wrapped: Buffer;
  /** DER SubjectPublicKeyInfo for key pairs. */
  publicKeySpki?: Buffer;
}

/** A key still not seen after reconnecting is missing; other failures pass. */
function missingAfterReconnect(error: unknown): unknown {
  if (error instanceof BrokerError && error.reason === staleViewReason) return keyMissing(String(error.details['label']));
  return error;
}

function keyMissing(label: string): BrokerError {
  // The registry says this appliance holds the key; if the token disagrees the
  // appliance lost it (wiped, restored from an old image). Another holder can serve.
  return new BrokerError(Code.UNAVAILABLE, `key object ${label} is missing on this appliance`, {
    reason: 'KEY_OBJECT_MISSING',
    failureClass: 'appliance',
    details: { label },
  });
}

/**
 * The broker's operations on one token, in terms of labelled key objects.
 * Every private or secret value stays inside the token: what comes back is
 * ciphertext, signatures, MACs, public keys and wrapped blobs.
 */
export class KeyOperations {
  readonly #token: Pkcs11Token;

  constructor(token: Pkcs11Token) {
    this.#token = token;
  }

  /**
   * The handle of a key object that must exist, inside a token call. When
   * the token says it does not, the call reconnects and asks again once
   * before the key is declared missing (see {@link #run}): a token
   * initialised again by another process is only seen after reconnecting.
   */
  #required(objectClass: number, label: string): Handle {
    const found = this.#token.findByLabel(objectClass, label);
    if (found) return found;
    throw staleTokenView(`key object ${label} not seen on the token`, { label });
  }

  /** A token call that may look up required keys. */
  #run<T>(body: (session: Handle, module: PKCS11) => T): T {
    try {
      return this.#token.run(body);
    } catch (error: unknown) {
      throw missingAfterReconnect(error);
    }
  }

  #singlePart<K extends SinglePartKind>(call: SinglePartCall<K>): SinglePartOutcome[K] {
    return this.#run((session, module) => singlePart(module, session, call, this.#required(call.objectClass, call.label)));
  }

  async #singlePartConcurrently<K extends SinglePartKind>(call: SinglePartCall<K>): Promise<SinglePartOutcome[K]> {
    try {
      return await this.#token.runConcurrently((session, module) =>
        singlePartConcurrently(module, session, call, this.#required(call.objectClass, call.label)),
      );
    } catch (error: unknown) {
      throw missingAfterReconnect(error);
    }
  }

  #secret(label: string): Handle {
    return this.#required(pkcs11js.CKO_SECRET_KEY, label);
  }

  #private(label: string): Handle {
    return this.#required(pkcs11js.CKO_PRIVATE_KEY, label);
  }

  #kek(label: string): Handle {
    return this.#required(pkcs11js.CKO_SECRET_KEY, label);
  }

  #public(label: string): Handle {
    return this.#required(pkcs11js.CKO_PUBLIC_KEY, label);
  }

  /** Generates a key (or key pair) labelled `label`. Returns the public key for pairs. */
  generateKey(spec: KeyMaterialSpec, label: string): { publicKeySpki?: Buffer } {
    if (this.hasKey(label)) {
      throw new BrokerError(Code.ALREADY_EXISTS, `key object ${label} already exists on this appliance`, {
        reason: 'KEY_OBJECT_EXISTS',
        failureClass: 'internal',
      });
    }
    if (!isAsymmetric(spec)) {
      const mechanism = spec === 'AES_256' ? pkcs11js.CKM_AES_KEY_GEN : pkcs11js.CKM_GENERIC_SECRET_KEY_GEN;
      this.#token.run((session, module) =>
        invoke('C_GenerateKey', () => module.C_GenerateKey(session, { mechanism }, secretKeyTemplate(spec, label))),
      );
      return {};
    }
    const templates = keyPairTemplates(spec, label);
    this.#token.run((session, module) =>
      invoke('C_GenerateKeyPair', () =>
        module.C_GenerateKeyPair(
          session,
          { mechanism: templates.mechanism },
          templates.publicTemplate,
          templates.privateTemplate,
        ),
      ),
    );
    return { publicKeySpki: this.publicKey(spec, label) };
  }

  /** Whether the token holds the secret or private object labelled `label`. */
  hasKey(label: string): boolean {
    return (
      this.#token.findByLabel(pkcs11js.CKO_SECRET_KEY, label) !== undefined ||
      this.#token.findByLabel(pkcs11js.CKO_PRIVATE_KEY, label) !== undefined
    );
  }

  /** The DER SubjectPublicKeyInfo of a key pair. */
  publicKey(spec: KeyMaterialSpec, label: string): Buffer {
    return this.#run((session, module) => {
      const handle = this.#public(label);
      if (spec.startsWith('ECC_')) {
        const [params, point] = invoke('C_GetAttributeValue', () =>
          module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_PARAMS }, { type: pkcs11js.CKA_EC_POINT }]),
        );
        return publicKeyToSpki({ kind: 'ec', curve: curveFromParams(params?.value ?? Buffer.alloc(0)), point: point?.value ?? Buffer.alloc(0) });
      }
      const [modulus, exponent] = invoke('C_GetAttributeValue', () =>
        module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]),
      );
      return publicKeyToSpki({ kind: 'rsa', modulus: modulus?.value ?? Buffer.alloc(0), exponent: exponent?.value ?? Buffer.alloc(0) });
    });
  }

  /** Wraps the secret or private object `label` under the wrapping key `kekLabel`. */
  wrapKey(spec: KeyMaterialSpec, label: string, kekLabel: string): WrappedKey {
    const wrapped = this.#run((session, module) => {
      const kek = this.#kek(kekLabel);
      const target = isAsymmetric(spec) ? this.#private(label) : this.#secret(label);
      return invoke('C_WrapKey', () =>
        Buffer.from(module.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, kek, target, Buffer.alloc(8192))),
      );
    });
    return isAsymmetric(spec) ? { wrapped, publicKeySpki: this.publicKey(spec, label) } : { wrapped };
  }

  /** Unwraps a key made by {@link wrapKey} on another token and stores it as `label`. */
  unwrapKey(spec: KeyMaterialSpec, label: string, kekLabel: string, key: WrappedKey): void {
    if (this.hasKey(label)) this.destroyKey(label);
    const template = isAsymmetric(spec) ? unwrappedPrivateTemplate(spec, label) : unwrappedSecretTemplate(spec, label);
    this.#run((session, module) => {
      const kek = this.#kek(kekLabel);
      return invoke('C_UnwrapKey', () =>
        module.C_UnwrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, kek, key.wrapped, template),
      );
    });
    if (isAsymmetric(spec)) {
      if (!key.publicKeySpki) throw new BrokerError(Code.INTERNAL, `wrapped ${spec} key ${label} lacks its public key`);
      const components = spkiToPublicKey(key.publicKeySpki);
      const template =
        components.kind === 'ec'
          ? publicKeyObjectTemplate(label, { kind: 'ec', params: curveParams[components.curve], point: components.point })
          : publicKeyObjectTemplate(label, components);
      this.#token.run((session, module) => invoke('C_CreateObject', () => module.C_CreateObject(session, template)));
    }
  }

  /** Destroys every object labelled `label`. Returns how many were destroyed. */
  destroyKey(label: string): number {
    const handles = this.#token.findObjects([{ type: pkcs11js.CKA_LABEL, value: label }]);
    for (const handle of handles) {
      this.#token.run((session, module) => invoke('C_DestroyObject', () => module.C_DestroyObject(session, handle)));
    }
    this.#token.forget(label);
    return handles.length;
  }

  /** Lists secret and private key objects whose label starts with `prefix`. */
  listKeys(prefix: string): KeyObjectInfo[] {
    const result: KeyObjectInfo[] = [];
    for (const [objectClass, name] of [
      [pkcs11js.CKO_SECRET_KEY, 'secret'],
      [pkcs11js.CKO_PRIVATE_KEY, 'private'],
    ] as const) {
      for (const handle of this.#token.findObjects([{ type: pkcs11js.CKA_CLASS, value: objectClass }])) {
        const [attr] = this.#token.run((session, module) =>
          invoke('C_GetAttributeValue', () => module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_LABEL }])),
        );
        const label = attr?.value.toString('utf8') ?? '';
        if (label.startsWith(prefix)) result.push({ label, objectClass: name });
      }
    }
    return result;
  }

  /** Describes the key objects labelled `prefix`… from their attributes (registry rebuild). */
  describeKeys(prefix: string): KeyObjectDescription[] {
    return describeKeyObjects(this.#token, prefix);
  }

  /** AES-256-GCM encryption; returns ciphertext || tag. */
  encrypt(label: string, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
    return this.#singlePart(encryptCall(label, iv, aad, plaintext));
  }

  /** {@link encrypt} on a session of its own, concurrently with other calls. */
  encryptConcurrently(label: string, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    return this.#singlePartConcurrently(encryptCall(label, iv, aad, plaintext));
  }

  /** AES-256-GCM decryption of ciphertext || tag. A failed tag check is INVALID_ARGUMENT. */
  decrypt(label: string, iv: Buffer, aad: Buffer, ciphertext: Buffer): Buffer {
    return this.#singlePart(decryptCall(label, iv, aad, ciphertext));
  }

  /** {@link decrypt} on a session of its own, concurrently with other calls. */
  decryptConcurrently(label: string, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    return this.#singlePartConcurrently(decryptCall(label, iv, aad, ciphertext));
  }

  /** Signs a digest. ECDSA signatures come back DER-encoded. */
  sign(label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer): Buffer {
    const raw = this.#singlePart(signCall(label, scheme, hash, digest));
    return scheme === 'ecdsa' ? ecdsaRawToDer(raw) : raw;
  }

  /** {@link sign} on a session of its own, concurrently with other calls. */
  async signConcurrently(label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer): Promise<Buffer> {
    const raw = await this.#singlePartConcurrently(signCall(label, scheme, hash, digest));
    return scheme === 'ecdsa' ? ecdsaRawToDer(raw) : raw;
  }

  /** Verifies a signature over a digest inside the token. A wrong or malformed signature is `false`. */
  verify(spec: KeyMaterialSpec, label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer, signature: Buffer): boolean {
    const call = verifyCall(spec, label, scheme, hash, digest, signature);
    if (!call) return false;
    try {
      return this.#singlePart(call);
    } catch (error: unknown) {
      return signatureRejected(error);
    }
  }

  /** {@link verify} on a session of its own, concurrently with other calls. */
  async verifyConcurrently(spec: KeyMaterialSpec, label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer, signature: Buffer): Promise<boolean> {
    const call = verifyCall(spec, label, scheme, hash, digest, signature);
    if (!call) return false;
    try {
      return await this.#singlePartConcurrently(call);
    } catch (error: unknown) {
      return signatureRejected(error);
    }
  }

  /** HMAC over `message`. */
  generateMac(label: string, hash: HashName, message: Buffer): Buffer {
    return this.#singlePart(macCall(label, hash, message));
  }

  /** {@link generateMac} on a session of its own, concurrently with other calls. */
  generateMacConcurrently(label: string, hash: HashName, message: Buffer): Promise<Buffer> {
    return this.#singlePartConcurrently(macCall(label, hash, message));
  }

  /** Verifies an HMAC inside the token. A wrong MAC is `false`. */
  verifyMac(label: string, hash: HashName, message: Buffer, mac: Buffer): boolean {
    if (mac.length !== hashLength[hash]) return false;
    try {
      return this.#singlePart(macCheck(label, hash, message, mac));
    } catch (error: unknown) {
      return signatureRejected(error);
    }
  }

  /** {@link verifyMac} on a session of its own, concurrently with other calls. */
  async verifyMacConcurrently(label: string, hash: HashName, message: Buffer, mac: Buffer): Promise<boolean> {
    if (mac.length !== hashLength[hash]) return false;
    try {
      return await this.#singlePartConcurrently(macCheck(label, hash, message, mac));
    } catch (error: unknown) {
      return signatureRejected(error);
    }
  }

  /** Random bytes from the token's generator. */
  generateRandom(length: number): Buffer {
    return this.#token.run((session, module) =>
      invoke('C_GenerateRandom', () => Buffer.from(module.C_GenerateRandom(session, Buffer.alloc(length)))),
    );
  }

  /** {@link generateRandom} on a session of its own, beside concurrent calls (pkcs11js runs it on this thread). */
  generateRandomConcurrently(length: number): Promise<Buffer> {
    return this.#token.runConcurrently((session, module) =>
      invoke('C_GenerateRandom', () => Buffer.from(module.C_GenerateRandom(session, Buffer.alloc(length)))),
    );
  }

  /** Names of the mechanisms the token offers. */
  mechanisms(): string[] {
    const token = this.#token;
    return token.run((_session, module) =>
      invoke('C_GetMechanismList', () => module.C_GetMechanismList(token.slot)).map(mechanismName),
    );
  }

  /**
   * A cheap real check that the token is present, the session and login
   * work, and which token it is (its serial changes when it is replaced).
   */
  probe(): { serial: string } {
    const { serial } = this.#token.refreshDescription();
    this.generateRandom(8);
    return { serial };
  }
}
