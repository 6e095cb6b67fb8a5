import pkcs11js from 'pkcs11js';
import type { Attribute, Template } from 'pkcs11js';
import { curveParams } from './asn1-encoding.js';
import type { CurveName } from './asn1-encoding.js';

/** Key material the broker creates, named as in the API's KeySpec. */
export type KeyMaterialSpec =
  | 'AES_256'
  | 'HMAC_256'
  | 'ECC_NIST_P256'
  | 'ECC_NIST_P384'
  | 'RSA_2048'
  | 'RSA_3072'
  | 'RSA_4096';

/** Every key material spec, in API order. */
export const keyMaterialSpecs: readonly KeyMaterialSpec[] = [
  'AES_256',
  'HMAC_256',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
];

/** Whether a spec is a key pair (a private object plus a public object). */
export function isAsymmetric(spec: KeyMaterialSpec): boolean {
  return spec.startsWith('ECC_') || spec.startsWith('RSA_');
}

/** The curve of an EC spec. */
export function curveOf(spec: KeyMaterialSpec): CurveName {
  if (spec === 'ECC_NIST_P256') return 'P-256';
  if (spec === 'ECC_NIST_P384') return 'P-384';
  throw new Error(`${spec} is not an elliptic-curve spec`);
}

function rsaBits(spec: KeyMaterialSpec): number {
  return Number(spec.slice('RSA_'.length));
}

/**
 * Attributes every broker key carries. Sensitive and extractable only under a
 * trusted wrapping key: material can move between HSMs wrapped under the
 * fleet KEK and nowhere else, and never appears in the clear.
 */
function protectedKey(label: string): Attribute[] {
  return [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
    { type: pkcs11js.CKA_WRAP_WITH_TRUSTED, value: true },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: Buffer.from(label, 'utf8') },
  ];
}

function secretUsage(spec: KeyMaterialSpec): Attribute[] {
  if (spec === 'AES_256') {
    return [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
    ];
  }
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_VERIFY, value: true },
  ];
}

/** Template for C_GenerateKey of a secret key. */
export function secretKeyTemplate(spec: KeyMaterialSpec, label: string): Template {
  return [...secretUsage(spec), { type: pkcs11js.CKA_VALUE_LEN, value: 32 }, ...protectedKey(label)];
}

/** Template for C_UnwrapKey of a secret key: like generation, without the length (the blob carries it). */
export function unwrappedSecretTemplate(spec: KeyMaterialSpec, label: string): Template {
  return [...secretUsage(spec), ...protectedKey(label)];
}

/** Public-object attributes shared by generation and import. */
function publicKeyCommon(label: string): Attribute[] {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: false },
    { type: pkcs11js.CKA_VERIFY, value: true },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: Buffer.from(label, 'utf8') },
  ];
}

/** Templates for C_GenerateKeyPair. */
export function keyPairTemplates(
  spec: KeyMaterialSpec,
  label: string,
): { mechanism: number; publicTemplate: Template; privateTemplate: Template } {
  const privateTemplate: Template = [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_SIGN, value: true },
    ...protectedKey(label),
  ];
  if (spec.startsWith('ECC_')) {
    return {
      mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN,
      publicTemplate: [
        ...publicKeyCommon(label),
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_EC_PARAMS, value: curveParams[curveOf(spec)] },
      ],
      privateTemplate: [...privateTemplate, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC }],
    };
  }
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
    publicTemplate: [
      ...publicKeyCommon(label),
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
      { type: pkcs11js.CKA_MODULUS_BITS, value: rsaBits(spec) },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
    ],
    privateTemplate: [...privateTemplate, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA }],
  };
}

/** Template for C_UnwrapKey of a private key. */
export function unwrappedPrivateTemplate(spec: KeyMaterialSpec, label: string): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: spec.startsWith('ECC_') ? pkcs11js.CKK_EC : pkcs11js.CKK_RSA },
    { type: pkcs11js.CKA_SIGN, value: true },
    ...protectedKey(label),
  ];
}

/** Template for C_CreateObject of a public key from its components. */
export function publicKeyObjectTemplate(
  label: string,
  components: { kind: 'ec'; params: Buffer; point: Buffer } | { kind: 'rsa'; modulus: Buffer; exponent: Buffer },
): Template {
  if (components.kind === 'ec') {
    return [
      ...publicKeyCommon(label),
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
      { type: pkcs11js.CKA_EC_PARAMS, value: components.params },
      { type: pkcs11js.CKA_EC_POINT, value: components.point },
    ];
  }
  return [
    ...publicKeyCommon(label),
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
    { type: pkcs11js.CKA_MODULUS, value: components.modulus },
    { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: components.exponent },
  ];
}
