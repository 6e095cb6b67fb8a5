import { BrokerError, Code } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import type { AesGCM, Handle, Mechanism, RsaPSS } from 'pkcs11js';
import {
  curveFromParams,
  curveParams,
  curveSize,
  digestInfo,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  hashLength,
  publicKeyToSpki,
  spkiToPublicKey,
} from './asn1-encoding.js';
import type { HashName } from './asn1-encoding.js';
import { describeKeyObjects } from './key-inventory.js';
import type { KeyObjectDescription } from './key-inventory.js';
import {
  curveOf,
  isAsymmetric,
  keyPairTemplates,
  publicKeyObjectTemplate,
  secretKeyTemplate,
  unwrappedPrivateTemplate,
  unwrappedSecretTemplate,
} from './key-templates.js';
import type { KeyMaterialSpec } from './key-templates.js';
import { mechanismName } from './mechanism-names.js';
import { invoke } from './pkcs11-token.js';
import type { Pkcs11Token } from './pkcs11-token.js';

/** How a signature is made. */
export type SignatureScheme = 'ecdsa' | 'rsa-pss' | 'rsa-pkcs1';

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

const gcmTagBits = 128;
const gcmIvBytes = 12;

const hashMechanism: Record<HashName, number> = {
  sha256: pkcs11js.CKM_SHA256,
  sha384: pkcs11js.CKM_SHA384,
  sha512: pkcs11js.CKM_SHA512,
};
const mgfOf: Record<HashName, number> = {
  sha256: pkcs11js.CKG_MGF1_SHA256,
  sha384: pkcs11js.CKG_MGF1_SHA384,
  sha512: pkcs11js.CKG_MGF1_SHA512,
};
const hmacMechanism: Record<HashName, number> = {
  sha256: pkcs11js.CKM_SHA256_HMAC,
  sha384: pkcs11js.CKM_SHA384_HMAC,
  sha512: pkcs11js.CKM_SHA512_HMAC,
};

function signingMechanism(scheme: SignatureScheme, hash: HashName): Mechanism {
  switch (scheme) {
    case 'ecdsa':
      return { mechanism: pkcs11js.CKM_ECDSA };
    case 'rsa-pkcs1':
      return { mechanism: pkcs11js.CKM_RSA_PKCS };
    case 'rsa-pss': {
      const parameter: RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: hashMechanism[hash], mgf: mgfOf[hash], saltLen: hashLength[hash] };
      return { mechanism: pkcs11js.CKM_RSA_PKCS_PSS, parameter };
    }
  }
}

function gcmMechanism(iv: Buffer, aad: Buffer): Mechanism {
  const parameter: AesGCM = { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: gcmIvBytes * 8, tagBits: gcmTagBits };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
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
   * The handle of a key object that must exist. When the token says it does
   * not, the session is re-established and the token asked again before the
   * key is declared missing: a token initialised again by another process is
   * only seen after reconnecting.
   */
  #required(objectClass: number, label: string): Handle {
    const found = this.#token.findByLabel(objectClass, label);
    if (found) return found;
    this.#token.reset();
    const again = this.#token.findByLabel(objectClass, label);
    if (again) return again;
    throw keyMissing(label);
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
    return this.#token.run((session, module) => {
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
    const wrapped = this.#token.run((session, module) => {
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
    this.#token.run((session, module) => {
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
    return this.#token.run((session, module) => {
      const key = this.#secret(label);
      invoke('C_EncryptInit', () => module.C_EncryptInit(session, gcmMechanism(iv, aad), key));
      return invoke('C_Encrypt', () =>
        Buffer.from(module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + gcmTagBits / 8))),
      );
    });
  }

  /** AES-256-GCM decryption of ciphertext || tag. A failed tag check is INVALID_ARGUMENT. */
  decrypt(label: string, iv: Buffer, aad: Buffer, ciphertext: Buffer): Buffer {
    return this.#token.run((session, module) => {
      const key = this.#secret(label);
      invoke('C_DecryptInit', () => module.C_DecryptInit(session, gcmMechanism(iv, aad), key));
      return invoke('C_Decrypt', () => Buffer.from(module.C_Decrypt(session, ciphertext, Buffer.alloc(ciphertext.length))));
    });
  }

  /** Signs a digest. ECDSA signatures come back DER-encoded. */
  sign(label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer): Buffer {
    const input = scheme === 'rsa-pkcs1' ? digestInfo(hash, digest) : digest;
    const raw = this.#token.run((session, module) => {
      const key = this.#private(label);
      invoke('C_SignInit', () => module.C_SignInit(session, signingMechanism(scheme, hash), key));
      return invoke('C_Sign', () => Buffer.from(module.C_Sign(session, input, Buffer.alloc(1024))));
    });
    return scheme === 'ecdsa' ? ecdsaRawToDer(raw) : raw;
  }

  /** Verifies a signature over a digest inside the token. A wrong or malformed signature is `false`. */
  verify(spec: KeyMaterialSpec, label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer, signature: Buffer): boolean {
    let candidate: Buffer | undefined = signature;
    if (scheme === 'ecdsa') candidate = ecdsaDerToRaw(signature, curveSize[curveOf(spec)]);
    if (!candidate || candidate.length === 0) return false;
    const input = scheme === 'rsa-pkcs1' ? digestInfo(hash, digest) : digest;
    const sig = candidate;
    return this.#verifyInside(() =>
      this.#token.run((session, module) => {
        const key = this.#public(label);
        invoke('C_VerifyInit', () => module.C_VerifyInit(session, signingMechanism(scheme, hash), key));
        return invoke('C_Verify', () => module.C_Verify(session, input, sig));
      }),
    );
  }

  /** HMAC over `message`. */
  generateMac(label: string, hash: HashName, message: Buffer): Buffer {
    return this.#token.run((session, module) => {
      const key = this.#secret(label);
      invoke('C_SignInit', () => module.C_SignInit(session, { mechanism: hmacMechanism[hash] }, key));
      return invoke('C_Sign', () => Buffer.from(module.C_Sign(session, message, Buffer.alloc(64))));
    });
  }

  /** Verifies an HMAC inside the token. A wrong MAC is `false`. */
  verifyMac(label: string, hash: HashName, message: Buffer, mac: Buffer): boolean {
    if (mac.length !== hashLength[hash]) return false;
    return this.#verifyInside(() =>
      this.#token.run((session, module) => {
        const key = this.#secret(label);
        invoke('C_VerifyInit', () => module.C_VerifyInit(session, { mechanism: hmacMechanism[hash] }, key));
        return invoke('C_Verify', () => module.C_Verify(session, message, mac));
      }),
    );
  }

  #verifyInside(body: () => boolean): boolean {
    try {
      return body();
    } catch (error: unknown) {
      if (error instanceof BrokerError && (error.reason === 'CKR_SIGNATURE_INVALID' || error.reason === 'CKR_SIGNATURE_LEN_RANGE')) {
        return false;
      }
      throw error;
    }
  }

  /** Random bytes from the token's generator. */
  generateRandom(length: number): Buffer {
    return this.#token.run((session, module) =>
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
