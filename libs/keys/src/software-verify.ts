import { constants, createECDH, createHash, publicDecrypt, timingSafeEqual, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { digestInfo, ecdsaDerToRaw, hashLength } from '@hsm-broker/pkcs11';
import type { HashName, SignatureScheme } from '@hsm-broker/pkcs11';

/**
 * Signature verification in software, on a key's recorded public key, as
 * crypto11 and most PKCS#11 clients do: a public-key operation needs no
 * secret, so it costs the HSMs nothing. It accepts exactly what the
 * appliances' C_Verify accepts: ECDSA signatures as DER (leading zeros
 * tolerated, as the HSM path decodes them), RSA-PSS with a salt as long as
 * the hash, PKCS #1 v1.5 with the DigestInfo of the hash.
 */

/** A public key ready for verification: the KeyObject, and for EC keys the curve and the point. */
export interface VerifyingKey {
  key: KeyObject;
  /** EC keys: curve parameters and the public point Q. */
  ec?: { curve: Curve; x: bigint; y: bigint };
  /** RSA keys: modulus length in bits. */
  modulusBits?: number;
}

/** A short Weierstrass curve y² = x³ − 3x + b over GF(p) with a base point of prime order n. */
interface Curve {
  /** OpenSSL name, for createECDH. */
  name: string;
  bytes: number;
  p: bigint;
  b: bigint;
  n: bigint;
}

const curves: Record<string, Curve> = {
  'P-256': {
    name: 'prime256v1',
    bytes: 32,
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  'P-384': {
    name: 'secp384r1',
    bytes: 48,
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
};

const toBig = (bytes: Uint8Array): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`));
const toBytes = (value: bigint, length: number): Buffer => Buffer.from(value.toString(16).padStart(length * 2, '0'), 'hex');
const mod = (value: bigint, m: bigint): bigint => ((value % m) + m) % m;

function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
  }
  return result;
}

function modInverse(value: bigint, m: bigint): bigint {
  let [a, b, x0, x1] = [mod(value, m), m, 0n, 1n];
  while (a > 1n) {
    const q = a / b;
    [a, b] = [b, a % b];
    [x0, x1] = [x1 - q * x0, x0];
  }
  return mod(x1, m);
}

type Point = { x: bigint; y: bigint } | undefined;

/** Affine point addition (doubling included); undefined is the point at infinity. */
function add(curve: Curve, a: Point, b: Point): Point {
  if (!a) return b;
  if (!b) return a;
  const { p } = curve;
  let slope: bigint;
  if (a.x === b.x) {
    if (mod(a.y + b.y, p) === 0n) return undefined;
    slope = mod((3n * a.x * a.x - 3n) * modInverse(2n * a.y, p), p);
  } else {
    slope = mod((b.y - a.y) * modInverse(b.x - a.x, p), p);
  }
  const x = mod(slope * slope - a.x - b.x, p);
  return { x, y: mod(slope * (a.x - x) - a.y, p) };
}

/** The y of a point with abscissa x (the root of y² = x³ − 3x + b with the given parity is not needed: both are returned). */
function ordinates(curve: Curve, x: bigint): [bigint, bigint] | undefined {
  const { p, b } = curve;
  const square = mod(x * x * x - 3n * x + b, p);
  // Both curves have p ≡ 3 (mod 4), so a square root is a single exponentiation.
  const y = modPow(square, (p + 1n) / 4n, p);
  if ((y * y) % p !== square) return undefined;
  return [y, mod(-y, p)];
}

/**
 * k·P for a scalar 0 < k < n, by OpenSSL through ECDH (which returns only
 * the abscissa of the product, so the caller recovers the ordinate).
 */
function abscissaOfMultiple(curve: Curve, k: bigint, q: { x: bigint; y: bigint }): bigint {
  const ecdh = createECDH(curve.name);
  ecdh.setPrivateKey(toBytes(k, curve.bytes));
  const point = Buffer.concat([Buffer.from([4]), toBytes(q.x, curve.bytes), toBytes(q.y, curve.bytes)]);
  return toBig(ecdh.computeSecret(point));
}

function baseMultiple(curve: Curve, k: bigint): Point {
  if (k === 0n) return undefined;
  const ecdh = createECDH(curve.name);
  ecdh.setPrivateKey(toBytes(k, curve.bytes));
  const encoded = ecdh.getPublicKey();
  return { x: toBig(encoded.subarray(1, 1 + curve.bytes)), y: toBig(encoded.subarray(1 + curve.bytes)) };
}

/**
 * k·Q with both coordinates: OpenSSL gives the abscissas of k·Q and
 * (k+1)·Q; of the two points with the first abscissa, k·Q is the one that
 * plus Q has the second (the other would need 2·k·Q = 0, impossible in a
 * group of prime order).
 */
function multiple(curve: Curve, k: bigint, q: { x: bigint; y: bigint }): Point {
  if (k === curve.n - 1n) return { x: q.x, y: mod(-q.y, curve.p) };
  const x = abscissaOfMultiple(curve, k, q);
  const next = abscissaOfMultiple(curve, k + 1n, q);
  const candidates = ordinates(curve, x);
  if (!candidates) return undefined;
  const [first, second] = candidates;
  return add(curve, { x, y: first }, q)?.x === next ? { x, y: first } : { x, y: second };
}

/** ECDSA verification over a digest (SEC 1 §4.1.4): x(u1·G + u2·Q) ≡ r (mod n). */
function verifyEcdsaDigest(ec: NonNullable<VerifyingKey['ec']>, digest: Buffer, signature: Buffer): boolean {
  const { curve } = ec;
  const raw = ecdsaDerToRaw(signature, curve.bytes);
  if (!raw) return false;
  const r = toBig(raw.subarray(0, curve.bytes));
  const s = toBig(raw.subarray(curve.bytes));
  if (r <= 0n || r >= curve.n || s <= 0n || s >= curve.n) return false;
  // The leftmost bits of the digest, as many as the order has.
  const orderBits = curve.n.toString(2).length;
  let e = toBig(digest);
  if (digest.length * 8 > orderBits) e >>= BigInt(digest.length * 8 - orderBits);
  const w = modInverse(s, curve.n);
  const u1 = mod(e * w, curve.n);
  const u2 = mod(r * w, curve.n);
  const sum = add(curve, baseMultiple(curve, u1), multiple(curve, u2, ec));
  return sum !== undefined && mod(sum.x, curve.n) === r;
}

function mgf1(hash: HashName, seed: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * hashLength[hash] < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 of the same hash and a salt as long as the hash. */
function pssEncodingMatches(encoded: Buffer, digest: Buffer, hash: HashName, modulusBits: number): boolean {
  const hLen = hashLength[hash];
  const emBits = modulusBits - 1;
  const emLen = Math.ceil(emBits / 8);
  // The integer is as long as the modulus; EM is its last emLen bytes, and any byte before them must be zero.
  const leading = encoded.subarray(0, encoded.length - emLen);
  if (leading.some((byte) => byte !== 0)) return false;
  const em = encoded.subarray(encoded.length - emLen);
  if (emLen < 2 * hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const unusedBits = 8 * emLen - emBits;
  const topMask = 0xff >> unusedBits;
  if (((maskedDb[0] ?? 0) & ~topMask & 0xff) !== 0) return false;
  const mask = mgf1(hash, h, maskedDb.length);
  const db = Buffer.from(maskedDb.map((byte, index) => byte ^ (mask[index] ?? 0)));
  db[0] = (db[0] ?? 0) & topMask;
  const separator = emLen - 2 * hLen - 2;
  if (db.subarray(0, separator).some((byte) => byte !== 0) || db[separator] !== 0x01) return false;
  const salt = db.subarray(separator + 1);
  const expected = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return timingSafeEqual(expected, h);
}

/** RSA verification over a digest: the signature raised to e, compared with the encoding the scheme expects. */
function verifyRsaDigest(key: VerifyingKey, scheme: 'rsa-pss' | 'rsa-pkcs1', hash: HashName, digest: Buffer, signature: Buffer): boolean {
  const modulusBits = key.modulusBits ?? 0;
  const k = Math.ceil(modulusBits / 8);
  if (signature.length !== k) return false;
  let encoded: Buffer;
  try {
    encoded = publicDecrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    // A signature not below the modulus.
    return false;
  }
  if (scheme === 'rsa-pss') return pssEncodingMatches(encoded, digest, hash, modulusBits);
  const t = digestInfo(hash, digest);
  if (k < t.length + 11) return false;
  const expected = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(k - t.length - 3, 0xff), Buffer.from([0]), t]);
  return timingSafeEqual(expected, encoded);
}

/** Prepares a DER SubjectPublicKeyInfo for {@link verifyInSoftware}. */
export function verifyingKeyOf(key: KeyObject): VerifyingKey {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    const jwk = key.export({ format: 'jwk' });
    const curve = curves[jwk.crv ?? ''];
    if (!curve || !jwk.x || !jwk.y) throw new Error(`unsupported EC public key (${String(jwk.crv)})`);
    return { key, ec: { curve, x: toBig(Buffer.from(jwk.x, 'base64url')), y: toBig(Buffer.from(jwk.y, 'base64url')) } };
  }
  return { key, modulusBits: details?.modulusLength ?? 0 };
}

/**
 * Verifies `signature` over a message: `message` itself when `isDigest` is
 * false (hashed here by OpenSSL), else the digest the caller already made.
 * A wrong or malformed signature is `false`, never an error.
 */
export function verifyInSoftware(key: VerifyingKey, scheme: SignatureScheme, hash: HashName, message: Buffer, isDigest: boolean, signature: Buffer): boolean {
  if (scheme === 'ecdsa') {
    if (!key.ec) return false;
    if (isDigest) return verifyEcdsaDigest(key.ec, message, signature);
    // Decoded as the HSM path decodes it, so both accept the same encodings.
    const raw = ecdsaDerToRaw(signature, key.ec.curve.bytes);
    return raw !== undefined && nodeVerify(hash, message, { key: key.key, dsaEncoding: 'ieee-p1363' }, raw);
  }
  if (isDigest) return verifyRsaDigest(key, scheme, hash, message, signature);
  const padding = scheme === 'rsa-pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
  try {
    return nodeVerify(hash, message, { key: key.key, padding, ...(scheme === 'rsa-pss' ? { saltLength: hashLength[hash] } : {}) }, signature);
  } catch {
    return false;
  }
}
