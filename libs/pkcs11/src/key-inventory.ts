import { createHash } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { Handle } from 'pkcs11js';
import { curveFromParams, publicKeyToSpki } from './asn1-encoding.js';
import type { KeyMaterialSpec } from './key-templates.js';
import { invoke } from './pkcs11-call.js';
import type { Pkcs11Token } from './pkcs11-token.js';

/**
 * A secret or private key object as the token itself describes it: enough
 * to tell which key spec and usage it was made with, and to compare copies
 * on different tokens without reading the key material.
 */
export interface KeyObjectDescription {
  label: string;
  objectClass: 'secret' | 'private';
  /** The key spec its type and size match; undefined when none does (see `unrecognised`). */
  spec: KeyMaterialSpec | undefined;
  /** Why `spec` is undefined, in words. */
  unrecognised?: string;
  /** CKA_ENCRYPT (secret) or CKA_DECRYPT (private). */
  encrypts: boolean;
  /** CKA_SIGN. */
  signs: boolean;
  /**
   * Hex fingerprint that equal key material has on every token: the
   * token's CKA_CHECK_VALUE for secret keys (undefined when the token
   * computes none), SHA-256 of the SubjectPublicKeyInfo for key pairs.
   */
  fingerprint: string | undefined;
  /** DER SubjectPublicKeyInfo, for a private key whose public object is on the token. */
  publicKeySpki?: Buffer;
}

/** A CK_BBOOL attribute as read back: one byte, 1 for true. */
function flag(value: Buffer | undefined): boolean {
  return value?.[0] === 1;
}

/** Reads attributes one call per attribute, so one the token lacks is undefined instead of failing the rest. */
function readEach(token: Pkcs11Token, handle: Handle, types: readonly number[]): Map<number, Buffer> {
  const found = new Map<number, Buffer>();
  for (const type of types) {
    try {
      const [attribute] = token.run((session, module) =>
        invoke('C_GetAttributeValue', () => module.C_GetAttributeValue(session, handle, [{ type }])),
      );
      if (Buffer.isBuffer(attribute?.value)) found.set(type, attribute.value);
    } catch {
      // CKR_ATTRIBUTE_TYPE_INVALID or _SENSITIVE: the token will not say.
    }
  }
  return found;
}

function secretSpec(keyType: number, valueBytes: number, signs: boolean): { spec: KeyMaterialSpec | undefined; unrecognised?: string } {
  // 0: the token does not say (SoftHSM leaves CKA_VALUE_LEN unset on keys
  // made by C_UnwrapKey, which is how replicas are made). The broker makes
  // only 32-byte secrets, and the fingerprint comparison catches a stranger.
  const sized = valueBytes === 32 || valueBytes === 0;
  if (keyType === pkcs11js.CKK_AES && sized) return { spec: 'AES_256' };
  if (keyType === pkcs11js.CKK_GENERIC_SECRET && sized && signs) return { spec: 'HMAC_256' };
  return { spec: undefined, unrecognised: `secret key of type 0x${keyType.toString(16)} and ${String(valueBytes)} bytes matches no key spec` };
}

function describeSecret(token: Pkcs11Token, handle: Handle, label: string): KeyObjectDescription {
  const values = readEach(token, handle, [pkcs11js.CKA_KEY_TYPE, pkcs11js.CKA_VALUE_LEN, pkcs11js.CKA_ENCRYPT, pkcs11js.CKA_SIGN, pkcs11js.CKA_CHECK_VALUE]);
  const keyType = values.get(pkcs11js.CKA_KEY_TYPE)?.readUInt32LE(0) ?? -1;
  const valueBytes = values.get(pkcs11js.CKA_VALUE_LEN)?.readUInt32LE(0) ?? 0;
  const signs = flag(values.get(pkcs11js.CKA_SIGN));
  const encrypts = flag(values.get(pkcs11js.CKA_ENCRYPT));
  const checkValue = values.get(pkcs11js.CKA_CHECK_VALUE);
  return {
    label,
    objectClass: 'secret',
    ...secretSpec(keyType, valueBytes, signs),
    encrypts,
    signs,
    fingerprint: checkValue !== undefined && checkValue.length > 0 ? checkValue.toString('hex') : undefined,
  };
}

function describePrivate(token: Pkcs11Token, handle: Handle, label: string): KeyObjectDescription {
  const values = readEach(token, handle, [pkcs11js.CKA_KEY_TYPE, pkcs11js.CKA_SIGN, pkcs11js.CKA_DECRYPT]);
  const keyType = values.get(pkcs11js.CKA_KEY_TYPE)?.readUInt32LE(0) ?? -1;
  const signs = flag(values.get(pkcs11js.CKA_SIGN));
  const encrypts = flag(values.get(pkcs11js.CKA_DECRYPT));
  const base = { label, objectClass: 'private' as const, encrypts, signs };
  // The public half carries the curve or modulus in the clear; the broker
  // always stores it beside the private key, under the same label.
  const [publicHandle] = token.findObjects([
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  if (publicHandle === undefined) {
    return { ...base, spec: undefined, unrecognised: 'private key without its public object', fingerprint: undefined };
  }
  try {
    let spec: KeyMaterialSpec;
    let spki: Buffer;
    if (keyType === pkcs11js.CKK_EC) {
      const values = readEach(token, publicHandle, [pkcs11js.CKA_EC_PARAMS, pkcs11js.CKA_EC_POINT]);
      const curve = curveFromParams(values.get(pkcs11js.CKA_EC_PARAMS) ?? Buffer.alloc(0));
      spec = curve === 'P-256' ? 'ECC_NIST_P256' : 'ECC_NIST_P384';
      spki = publicKeyToSpki({ kind: 'ec', curve, point: values.get(pkcs11js.CKA_EC_POINT) ?? Buffer.alloc(0) });
    } else if (keyType === pkcs11js.CKK_RSA) {
      const values = readEach(token, publicHandle, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
      const modulus = values.get(pkcs11js.CKA_MODULUS) ?? Buffer.alloc(0);
      const bits = modulus.length * 8;
      if (bits !== 2048 && bits !== 3072 && bits !== 4096) {
        return { ...base, spec: undefined, unrecognised: `RSA key of ${String(bits)} bits matches no key spec`, fingerprint: undefined };
      }
      spec = `RSA_${String(bits)}` as KeyMaterialSpec;
      spki = publicKeyToSpki({ kind: 'rsa', modulus, exponent: values.get(pkcs11js.CKA_PUBLIC_EXPONENT) ?? Buffer.alloc(0) });
    } else {
      return { ...base, spec: undefined, unrecognised: `private key of type 0x${keyType.toString(16)} matches no key spec`, fingerprint: undefined };
    }
    return { ...base, spec, fingerprint: createHash('sha256').update(spki).digest('hex'), publicKeySpki: spki };
  } catch (error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ...base, spec: undefined, unrecognised: `public key unreadable: ${reason}`, fingerprint: undefined };
  }
}

/**
 * Describes every secret and private key object whose label starts with
 * `prefix`, from the attributes the token reports. Reads no key material.
 */
export function describeKeyObjects(token: Pkcs11Token, prefix: string): KeyObjectDescription[] {
  const result: KeyObjectDescription[] = [];
  for (const objectClass of [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY]) {
    for (const handle of token.findObjects([{ type: pkcs11js.CKA_CLASS, value: objectClass }])) {
      const label = readEach(token, handle, [pkcs11js.CKA_LABEL]).get(pkcs11js.CKA_LABEL)?.toString('utf8') ?? '';
      if (!label.startsWith(prefix)) continue;
      result.push(
        objectClass === pkcs11js.CKO_SECRET_KEY ? describeSecret(token, handle, label) : describePrivate(token, handle, label),
      );
    }
  }
  return result;
}
