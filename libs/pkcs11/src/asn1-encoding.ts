import { createPublicKey } from 'node:crypto';

/** Hash functions the broker signs with. */
export type HashName = 'sha256' | 'sha384' | 'sha512';

/** Digest lengths in bytes. */
export const hashLength: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };

/**
 * DER DigestInfo prefixes (RFC 8017 §9.2, note 1): CKM_RSA_PKCS signs
 * DigestInfo || digest, which lets the broker sign digests it did not make.
 */
const digestInfoPrefix: Record<HashName, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** DigestInfo for an RSASSA-PKCS1-v1_5 signature over `digest`. */
export function digestInfo(hash: HashName, digest: Buffer): Buffer {
  return Buffer.concat([digestInfoPrefix[hash], digest]);
}

/** The curves the broker makes keys on, by JWK name. */
export type CurveName = 'P-256' | 'P-384';

/** DER-encoded OBJECT IDENTIFIERs for CKA_EC_PARAMS (namedCurve). */
export const curveParams: Record<CurveName, Buffer> = {
  'P-256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'P-384': Buffer.from('06052b81040022', 'hex'),
};

/** Field size in bytes of each curve; ECDSA r and s are this long. */
export const curveSize: Record<CurveName, number> = { 'P-256': 32, 'P-384': 48 };

/** Finds the curve for a CKA_EC_PARAMS value. */
export function curveFromParams(params: Buffer): CurveName {
  for (const [name, der] of Object.entries(curveParams) as [CurveName, Buffer][]) {
    if (der.equals(params)) return name;
  }
  throw new Error(`unsupported EC parameters ${params.toString('hex')}`);
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}

function encodeUnsignedInteger(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  let body = value.subarray(start);
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), encodeLength(body.length), body]);
}

/** Converts a PKCS#11 ECDSA signature (r || s) into the DER form OpenSSL and KMS produce. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([
    encodeUnsignedInteger(raw.subarray(0, half)),
    encodeUnsignedInteger(raw.subarray(half)),
  ]);
  return Buffer.concat([Buffer.from([0x30]), encodeLength(body.length), body]);
}

/** Reads one DER length at `offset`; returns the length and where the content starts. */
function readLength(der: Buffer, offset: number): { length: number; start: number } | undefined {
  const first = der[offset];
  if (first === undefined) return undefined;
  if (first < 0x80) return { length: first, start: offset + 1 };
  const count = first & 0x7f;
  if (count === 0 || count > 2 || offset + 1 + count > der.length) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = (length << 8) | (der[offset + 1 + i] ?? 0);
  return { length, start: offset + 1 + count };
}

/**
 * Converts a DER ECDSA signature into r || s of `size` bytes each. Returns
 * undefined for anything malformed, which a verifier reports as invalid.
 */
export function ecdsaDerToRaw(der: Buffer, size: number): Buffer | undefined {
  if (der[0] !== 0x30) return undefined;
  const seq = readLength(der, 1);
  if (!seq || seq.start + seq.length !== der.length) return undefined;
  const parts: Buffer[] = [];
  let offset = seq.start;
  for (let i = 0; i < 2; i++) {
    if (der[offset] !== 0x02) return undefined;
    const int = readLength(der, offset + 1);
    if (!int || int.length === 0 || int.start + int.length > der.length) return undefined;
    let value = der.subarray(int.start, int.start + int.length);
    while (value.length > 1 && value[0] === 0) value = value.subarray(1);
    if (value.length > size) return undefined;
    parts.push(Buffer.concat([Buffer.alloc(size - value.length), value]));
    offset = int.start + int.length;
  }
  if (offset !== der.length) return undefined;
  return Buffer.concat(parts);
}

/** Public key components as PKCS#11 stores them. */
export type PublicKeyComponents =
  | { kind: 'ec'; curve: CurveName; point: Buffer }
  | { kind: 'rsa'; modulus: Buffer; exponent: Buffer };

/** Builds a DER SubjectPublicKeyInfo from PKCS#11 public key components. */
export function publicKeyToSpki(components: PublicKeyComponents): Buffer {
  if (components.kind === 'rsa') {
    const key = createPublicKey({
      key: {
        kty: 'RSA',
        n: stripLeadingZeros(components.modulus).toString('base64url'),
        e: stripLeadingZeros(components.exponent).toString('base64url'),
      },
      format: 'jwk',
    });
    return key.export({ type: 'spki', format: 'der' });
  }
  const size = curveSize[components.curve];
  const point = unwrapOctetString(components.point);
  if (point.length !== 1 + 2 * size || point[0] !== 0x04) {
    throw new Error('EC point is not an uncompressed point on the key curve');
  }
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: components.curve,
      x: point.subarray(1, 1 + size).toString('base64url'),
      y: point.subarray(1 + size).toString('base64url'),
    },
    format: 'jwk',
  });
  return key.export({ type: 'spki', format: 'der' });
}

/** Reads PKCS#11 public key components back out of a DER SubjectPublicKeyInfo. */
export function spkiToPublicKey(spki: Buffer): PublicKeyComponents {
  const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    return {
      kind: 'rsa',
      modulus: Buffer.from(jwk.n, 'base64url'),
      exponent: Buffer.from(jwk.e, 'base64url'),
    };
  }
  if (jwk.kty === 'EC' && jwk.x && jwk.y && (jwk.crv === 'P-256' || jwk.crv === 'P-384')) {
    const raw = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    return { kind: 'ec', curve: jwk.crv, point: Buffer.concat([Buffer.from([0x04]), encodeLength(raw.length), raw]) };
  }
  throw new Error(`unsupported public key type ${String(jwk.kty)}`);
}

function stripLeadingZeros(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  return value.subarray(start);
}

/** CKA_EC_POINT is a DER OCTET STRING around the point; some modules return the bare point. */
function unwrapOctetString(value: Buffer): Buffer {
  if (value[0] === 0x04) {
    const len = readLength(value, 1);
    if (len && len.start + len.length === value.length) return value.subarray(len.start);
  }
  return value;
}
