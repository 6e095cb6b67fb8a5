import { constants, verify } from 'node:crypto';

/** How node:crypto verifies each signing algorithm the broker offers, by enum name without prefix. */
const verifiers: Readonly<Record<string, { hash: string; padding?: number }>> = {
  ECDSA_SHA_256: { hash: 'sha256' },
  ECDSA_SHA_384: { hash: 'sha384' },
  RSASSA_PSS_SHA_256: { hash: 'sha256', padding: constants.RSA_PKCS1_PSS_PADDING },
  RSASSA_PSS_SHA_384: { hash: 'sha384', padding: constants.RSA_PKCS1_PSS_PADDING },
  RSASSA_PSS_SHA_512: { hash: 'sha512', padding: constants.RSA_PKCS1_PSS_PADDING },
  RSASSA_PKCS1_V1_5_SHA_256: { hash: 'sha256' },
  RSASSA_PKCS1_V1_5_SHA_384: { hash: 'sha384' },
  RSASSA_PKCS1_V1_5_SHA_512: { hash: 'sha512' },
};

/**
 * Verifies a signature the broker made over a raw message, with node:crypto
 * and the key's public half, so that the check does not trust the broker's
 * own Verify. ECDSA signatures are DER; PSS uses a salt as long as the hash.
 */
export function signatureVerifies(
  algorithm: string,
  publicKeyPem: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const verifier = verifiers[algorithm];
  if (verifier === undefined) throw new Error(`no node:crypto verifier for ${algorithm}`);
  return verify(
    verifier.hash,
    message,
    {
      key: publicKeyPem,
      dsaEncoding: 'der',
      ...(verifier.padding === undefined
        ? {}
        : { padding: verifier.padding, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }),
    },
    signature,
  );
}
