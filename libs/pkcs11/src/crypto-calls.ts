import { BrokerError } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import type { AesGCM, Mechanism, RsaPSS } from 'pkcs11js';
import { curveSize, digestInfo, ecdsaDerToRaw, hashLength } from './asn1-encoding.js';
import type { HashName } from './asn1-encoding.js';
import { curveOf } from './key-templates.js';
import type { KeyMaterialSpec } from './key-templates.js';
import type { SinglePartCall } from './single-part-call.js';

// The broker's crypto operations as single-part PKCS#11 calls: mechanism,
// key class, input and output buffer, built once for both ways of running them.

/** How a signature is made. */
export type SignatureScheme = 'ecdsa' | 'rsa-pss' | 'rsa-pkcs1';

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
/** HMAC mechanisms by hash. */
export const hmacMechanism: Record<HashName, number> = {
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

export function encryptCall(label: string, iv: Buffer, aad: Buffer, plaintext: Buffer): SinglePartCall<'encrypt'> {
  const output = Buffer.alloc(plaintext.length + gcmTagBits / 8);
  return { kind: 'encrypt', objectClass: pkcs11js.CKO_SECRET_KEY, label, mechanism: gcmMechanism(iv, aad), input: plaintext, second: output };
}

export function decryptCall(label: string, iv: Buffer, aad: Buffer, ciphertext: Buffer): SinglePartCall<'decrypt'> {
  const output = Buffer.alloc(ciphertext.length);
  return { kind: 'decrypt', objectClass: pkcs11js.CKO_SECRET_KEY, label, mechanism: gcmMechanism(iv, aad), input: ciphertext, second: output };
}

export function signCall(label: string, scheme: SignatureScheme, hash: HashName, digest: Buffer): SinglePartCall<'sign'> {
  const input = scheme === 'rsa-pkcs1' ? digestInfo(hash, digest) : digest;
  return { kind: 'sign', objectClass: pkcs11js.CKO_PRIVATE_KEY, label, mechanism: signingMechanism(scheme, hash), input, second: Buffer.alloc(1024) };
}

/** The verification, or undefined for a signature that cannot be right (malformed DER, empty). */
export function verifyCall(
  spec: KeyMaterialSpec,
  label: string,
  scheme: SignatureScheme,
  hash: HashName,
  digest: Buffer,
  signature: Buffer,
): SinglePartCall<'verify'> | undefined {
  const candidate = scheme === 'ecdsa' ? ecdsaDerToRaw(signature, curveSize[curveOf(spec)]) : signature;
  if (!candidate || candidate.length === 0) return undefined;
  const input = scheme === 'rsa-pkcs1' ? digestInfo(hash, digest) : digest;
  return { kind: 'verify', objectClass: pkcs11js.CKO_PUBLIC_KEY, label, mechanism: signingMechanism(scheme, hash), input, second: candidate };
}

export function macCall(label: string, hash: HashName, message: Buffer): SinglePartCall<'sign'> {
  return { kind: 'sign', objectClass: pkcs11js.CKO_SECRET_KEY, label, mechanism: { mechanism: hmacMechanism[hash] }, input: message, second: Buffer.alloc(64) };
}

export function macCheck(label: string, hash: HashName, message: Buffer, mac: Buffer): SinglePartCall<'verify'> {
  return { kind: 'verify', objectClass: pkcs11js.CKO_SECRET_KEY, label, mechanism: { mechanism: hmacMechanism[hash] }, input: message, second: mac };
}

/** A signature or MAC the token rejected is `false`; other failures pass. */
export function signatureRejected(error: unknown): false {
  if (error instanceof BrokerError && (error.reason === 'CKR_SIGNATURE_INVALID' || error.reason === 'CKR_SIGNATURE_LEN_RANGE')) return false;
  throw error;
}
