import fc from 'fast-check';
import type { Arbitrary } from 'fast-check';

/** What the fuzzer knows about the broker it attacks. */
export interface FuzzSeeds {
  /** Key ids that exist (so requests get past the lookup and reach deeper checks). */
  keyIds: string[];
  /** Valid ciphertexts and data-key blobs, to be mutated. */
  ciphertexts: Buffer[];
  /** Valid signatures (DER ECDSA, RSA), to be mutated. */
  signatures: Buffer[];
}

/** One mutation of a valid blob. */
type Mutation = { flip: number; bit: number } | { truncate: number } | { append: Uint8Array } | { set: number; value: number };

const mutation: Arbitrary<Mutation> = fc.oneof(
  fc.record({ flip: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ truncate: fc.nat() }),
  fc.record({ append: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ set: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
);

function mutate(blob: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(blob);
  for (const change of mutations) {
    if (out.length === 0) break;
    if ('flip' in change) out[change.flip % out.length] = (out[change.flip % out.length] ?? 0) ^ (1 << change.bit);
    else if ('truncate' in change) out = out.subarray(0, change.truncate % out.length);
    else if ('append' in change) out = Buffer.concat([out, change.append]);
    else out[change.set % out.length] = change.value;
  }
  return out;
}

/** A valid blob with a few mutations (bit flips, truncation, trailing bytes, changed header bytes). */
export function mutated(blobs: Buffer[]): Arbitrary<Buffer> {
  return fc.tuple(fc.constantFrom(...blobs), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([blob, mutations]) => mutate(blob, mutations));
}

/** Random DER: SEQUENCEs of INTEGERs with random contents, and lengths that may lie. */
export const randomDer: Arbitrary<Buffer> = fc
  .tuple(fc.uint8Array({ maxLength: 70 }), fc.uint8Array({ maxLength: 70 }), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 }), fc.constantFrom(0x30, 0x31, 0x02, 0x04))
  .map(([r, s, skewOuter, skewInner, tag]) => {
    const integer = (value: Uint8Array, skew: number): Buffer => Buffer.concat([Buffer.from([0x02, Math.max(0, Math.min(255, value.length + skew))]), value]);
    const body = Buffer.concat([integer(r, skewInner), integer(s, 0)]);
    return Buffer.concat([Buffer.from([tag, Math.max(0, Math.min(255, body.length + skewOuter))]), body]);
  });

/** Random ciphertext-shaped blobs: the broker's magic and version, a key-id length, then anything. */
export const randomCiphertext: Arbitrary<Buffer> = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 120 }), fc.boolean())
  .map(([idLength, keyId, rest, goodVersion]) => Buffer.concat([Buffer.from('HB', 'ascii'), Buffer.from([goodVersion ? 1 : 2, idLength]), Buffer.from(keyId, 'utf8'), rest]));

const text: Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '*', '../../etc/passwd', 'hsmb:x:1', 'a\nb', '%s%n', 'x'.repeat(129), 'é'.repeat(100)),
);

function keyIds(seeds: FuzzSeeds): Arbitrary<string> {
  return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...seeds.keyIds) }, { weight: 2, arbitrary: text }, { weight: 1, arbitrary: fc.constant('k'.repeat(300_000)) });
}

function bytes(seeds: FuzzSeeds): Arbitrary<Buffer> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((value) => Buffer.from(value)),
    mutated(seeds.ciphertexts),
    fc.constantFrom(...seeds.ciphertexts),
    randomCiphertext,
    randomDer,
    fc.integer({ min: 0, max: 70_000 }).map((length) => Buffer.alloc(length, 0x5a)),
  );
}

const context: Arbitrary<Record<string, string>> = fc.oneof(
  fc.dictionary(text, text, { maxKeys: 6 }),
  fc.constant({}),
  fc.constant(Object.fromEntries(Array.from({ length: 70 }, (_value, index) => [`k${String(index)}`, 'v']))),
  fc.constant({ big: 'v'.repeat(9000) }),
);

// Mostly valid values (so requests reach the deeper checks and the HSMs), sometimes any int32.
const enumValue: Arbitrary<number> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 3 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 9 }) },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
);
const uint32: Arbitrary<number> = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }) }, { weight: 1, arbitrary: fc.nat({ max: 2 ** 32 - 1 }) });

/**
 * A request object with any of the fields any broker request has, each
 * valid, hostile or absent; `fromPartial` of the method's request type
 * keeps the fields that type declares.
 */
export function structuredRequest(seeds: FuzzSeeds): Arbitrary<Record<string, unknown>> {
  const anyBytes = bytes(seeds);
  return fc.record(
    {
      keyId: keyIds(seeds),
      destinationKeyId: keyIds(seeds),
      // Random names only: a real appliance or zone id would let the fuzzer drain or fence on purpose.
      applianceId: text,
      zone: text,
      pageToken: fc.oneof(text, keyIds(seeds)),
      plaintext: anyBytes,
      ciphertext: fc.oneof(mutated(seeds.ciphertexts), randomCiphertext, anyBytes),
      message: anyBytes,
      signature: fc.oneof(randomDer, mutated(seeds.signatures), anyBytes),
      mac: anyBytes,
      backup: fc.oneof(anyBytes, fc.constant(Buffer.from('HSMB-BACKUP\n{}'))),
      encryptionContext: context,
      sourceEncryptionContext: context,
      destinationEncryptionContext: context,
      labels: context,
      description: fc.oneof(text, fc.constant('d'.repeat(9000))),
      // RSA-3072/4096 generation takes seconds per case; the other specs cover the same checks.
      keySpec: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5), fc.integer({ min: 8, max: 1000 })),
      keyUsage: enumValue,
      messageType: enumValue,
      signingAlgorithm: enumValue,
      macAlgorithm: enumValue,
      kind: enumValue,
      keyVersion: uint32,
      numBytes: uint32,
      pageSize: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      pendingWindowDays: uint32,
      rotationPeriodDays: uint32,
      minDecryptionVersion: fc.option(uint32, { nil: undefined }),
      probability: fc.double(),
      latencyMs: uint32,
      durationMs: uint32,
    },
    { requiredKeys: [] },
  );
}

/** Random protobuf-ish bytes: pure noise, or well-formed tags with random values. */
export const randomProtobuf: Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((value) => Buffer.from(value)),
  fc
    .array(
      fc.tuple(fc.integer({ min: 1, max: 20 }), fc.constantFrom(0, 1, 2, 5), fc.uint8Array({ maxLength: 60 })).map(([number, wireType, body]) => {
        const tag = Buffer.from([(number << 3) | wireType]);
        if (wireType === 2) return Buffer.concat([tag, Buffer.from([body.length]), body]);
        if (wireType === 0) return Buffer.concat([tag, Buffer.from([(body[0] ?? 0) & 0x7f])]);
        return Buffer.concat([tag, Buffer.alloc(wireType === 1 ? 8 : 4, body[0] ?? 0)]);
      }),
      { maxLength: 8 },
    )
    .map((fields) => Buffer.concat(fields)),
);
