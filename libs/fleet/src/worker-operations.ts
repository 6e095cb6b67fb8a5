import { BrokerError, Code } from '@hsm-broker/errors';
import type {
  EnrollmentKey,
  FleetKek,
  HashName,
  KeyMaterialSpec,
  KeyObjectDescription,
  KeyObjectInfo,
  KeyOperations,
  SignatureScheme,
  TokenDescription,
  WrappedKey,
} from '@hsm-broker/pkcs11';

/**
 * Every operation an appliance worker process performs, with its argument
 * and result. The parent calls them over the worker pipe; the worker runs
 * them with libs/pkcs11. PINs cross this boundary only inside
 * `initializeToken` and the worker's init message, never in argv or the
 * environment.
 */
export interface WorkerOperations {
  describe(args: Record<string, never>): { token: TokenDescription; mechanisms: string[] };
  probe(args: Record<string, never>): { serial: string };
  generateKey(args: { spec: KeyMaterialSpec; label: string }): { publicKeySpki?: Buffer };
  hasKey(args: { label: string }): boolean;
  wrapKey(args: { spec: KeyMaterialSpec; label: string; kekLabel: string }): WrappedKey;
  unwrapKey(args: { spec: KeyMaterialSpec; label: string; kekLabel: string; key: WrappedKey }): null;
  destroyKey(args: { label: string }): number;
  listKeys(args: { prefix: string }): KeyObjectInfo[];
  describeKeys(args: { prefix: string }): KeyObjectDescription[];
  publicKey(args: { spec: KeyMaterialSpec; label: string }): Buffer;
  encrypt(args: { label: string; iv: Buffer; aad: Buffer; plaintext: Buffer }): Buffer;
  decrypt(args: { label: string; iv: Buffer; aad: Buffer; ciphertext: Buffer }): Buffer;
  sign(args: { label: string; scheme: SignatureScheme; hash: HashName; digest: Buffer }): Buffer;
  verify(args: {
    spec: KeyMaterialSpec;
    label: string;
    scheme: SignatureScheme;
    hash: HashName;
    digest: Buffer;
    signature: Buffer;
  }): boolean;
  generateMac(args: { label: string; hash: HashName; message: Buffer }): Buffer;
  verifyMac(args: { label: string; hash: HashName; message: Buffer; mac: Buffer }): boolean;
  generateRandom(args: { length: number }): Buffer;
  // Security-officer operations (a worker started with role 'so').
  kekId(args: { label: string }): string | null;
  generateKek(args: { label: string; kekId: string }): null;
  createEnrollmentKey(args: Record<string, never>): EnrollmentKey;
  wrapKekFor(args: { label: string; peer: EnrollmentKey }): Buffer;
  receiveKek(args: { label: string; kekId: string; wrapped: Buffer }): null;
  // Token set-up (a worker started with role 'none').
  initializeToken(args: { label: string; soPin: string; userPin: string }): null;
}

/** The name of a worker operation. */
export type WorkerOperation = keyof WorkerOperations;
/** The argument of operation `K`. */
export type WorkerArgs<K extends WorkerOperation> = Parameters<WorkerOperations[K]>[0];
/** The result of operation `K`. */
export type WorkerResult<K extends WorkerOperation> = ReturnType<WorkerOperations[K]>;

/** A PKCS#11 mechanism, by the name C_GetMechanismList reports (see mechanismName) and its number. */
export interface MechanismRef {
  name: string;
  number: number;
}

/** What a worker process offers the operations it runs, by its login role. */
export interface WorkerContext {
  /** The crypto-user operations; throws in a worker of another role. */
  user(): KeyOperations;
  /** The fleet-KEK officer steps; throws in a worker of another role. */
  officer(): FleetKek;
  /** The token and mechanisms, in any role that opened a token. */
  describe(): { token: TokenDescription; mechanisms: string[] };
  /** Initialises a token (role 'none' only). */
  initializeToken(label: string, soPin: string, userPin: string): void;
}

/** One operation, defined once: its wire number and field order, its traits, and how the worker runs it. */
export interface OperationDefinition<K extends WorkerOperation> {
  /** Its number on the wire (one byte; stable across versions of broker and worker, which ship together). */
  code: number;
  /** The argument's fields in wire order (their names never travel). */
  fields: readonly (keyof WorkerArgs<K> & string)[];
  /** Changes nothing: may be tried again on another appliance after an appliance fault. */
  idempotent: boolean;
  /** Safe to send to a second appliance while the first is still working (the first answer wins). */
  hedgeable: boolean;
  /** Runs under the long timeout (key generation, wrapping, inventory). */
  slow: boolean;
  /** The mechanism the appliance must offer for these arguments, when one matters to routing. */
  mechanism?: (args: WorkerArgs<K>) => MechanismRef;
  /** How the worker runs it, alone on the main session. */
  run(context: WorkerContext, args: WorkerArgs<K>): WorkerResult<K>;
  /**
   * How the worker runs it on a session of its own, beside other such calls,
   * when it has several sessions. Operations without it run alone.
   */
  concurrently?: (context: WorkerContext, args: WorkerArgs<K>) => Promise<WorkerResult<K>>;
}

const ckmRsaPkcs: MechanismRef = { name: 'CKM_RSA_PKCS', number: 0x1 };
const ckmRsaPkcsPss: MechanismRef = { name: 'CKM_RSA_PKCS_PSS', number: 0xd };
const ckmEcdsa: MechanismRef = { name: 'CKM_ECDSA', number: 0x1041 };
const ckmAesGcm: MechanismRef = { name: 'CKM_AES_GCM', number: 0x1087 };
const schemeMechanism: Record<SignatureScheme, MechanismRef> = { ecdsa: ckmEcdsa, 'rsa-pss': ckmRsaPkcsPss, 'rsa-pkcs1': ckmRsaPkcs };
const hmacMechanism: Record<HashName, MechanismRef> = {
  sha256: { name: 'CKM_SHA256_HMAC', number: 0x251 },
  sha384: { name: 'CKM_SHA384_HMAC', number: 0x261 },
  sha512: { name: 'CKM_SHA512_HMAC', number: 0x271 },
};

/** Traits of a read-only call that needs no second look: neither hedged nor slow. */
const lookup = { idempotent: true, hedgeable: false, slow: false } as const;
/** Traits of a crypto call: idempotent and hedgeable (a second ciphertext or signature is just as valid). */
const crypto = { idempotent: true, hedgeable: true, slow: false } as const;
/** Traits of a call that changes a token: never repeated blindly, long timeout. */
const change = { idempotent: false, hedgeable: false, slow: true } as const;
/** Traits of an officer or set-up step: never repeated blindly, normal timeout (callers pass their own). */
const step = { idempotent: false, hedgeable: false, slow: false } as const;

/**
 * The operation catalog: every worker operation once. The fleet reads its
 * traits (retry, hedge, timeout, mechanism), the pipe its code and fields,
 * the worker process its `run`.
 */
export const operationCatalog: { readonly [K in WorkerOperation]: OperationDefinition<K> } = {
  describe: { code: 1, fields: [], ...lookup, run: (context) => context.describe() },
  probe: { code: 2, fields: [], ...lookup, run: (context) => context.user().probe() },
  generateKey: { code: 3, fields: ['spec', 'label'], ...change, run: (context, { spec, label }) => context.user().generateKey(spec, label) },
  hasKey: { code: 4, fields: ['label'], ...lookup, run: (context, { label }) => context.user().hasKey(label) },
  wrapKey: {
    code: 5,
    fields: ['spec', 'label', 'kekLabel'],
    // Wrapping reads a key and leaves it be: safe to repeat, but slow and not worth a duplicate.
    idempotent: true,
    hedgeable: false,
    slow: true,
    // No mechanism for routing: networked appliances wrap inside the node (clone endpoint), not over the link.
    run: (context, { spec, label, kekLabel }) => context.user().wrapKey(spec, label, kekLabel),
  },
  unwrapKey: {
    code: 6,
    fields: ['spec', 'label', 'kekLabel', 'key'],
    ...change,
    run: (context, { spec, label, kekLabel, key }) => {
      context.user().unwrapKey(spec, label, kekLabel, key);
      return null;
    },
  },
  destroyKey: { code: 7, fields: ['label'], ...change, run: (context, { label }) => context.user().destroyKey(label) },
  listKeys: { code: 8, fields: ['prefix'], ...lookup, slow: true, run: (context, { prefix }) => context.user().listKeys(prefix) },
  describeKeys: { code: 9, fields: ['prefix'], ...lookup, run: (context, { prefix }) => context.user().describeKeys(prefix) },
  publicKey: { code: 10, fields: ['spec', 'label'], ...lookup, run: (context, { spec, label }) => context.user().publicKey(spec, label) },
  encrypt: {
    code: 11,
    fields: ['label', 'iv', 'aad', 'plaintext'],
    ...crypto,
    mechanism: () => ckmAesGcm,
    run: (context, { label, iv, aad, plaintext }) => context.user().encrypt(label, iv, aad, plaintext),
    concurrently: (context, { label, iv, aad, plaintext }) => context.user().encryptConcurrently(label, iv, aad, plaintext),
  },
  decrypt: {
    code: 12,
    fields: ['label', 'iv', 'aad', 'ciphertext'],
    ...crypto,
    mechanism: () => ckmAesGcm,
    run: (context, { label, iv, aad, ciphertext }) => context.user().decrypt(label, iv, aad, ciphertext),
    concurrently: (context, { label, iv, aad, ciphertext }) => context.user().decryptConcurrently(label, iv, aad, ciphertext),
  },
  sign: {
    code: 13,
    fields: ['label', 'scheme', 'hash', 'digest'],
    ...crypto,
    mechanism: ({ scheme }) => schemeMechanism[scheme],
    run: (context, { label, scheme, hash, digest }) => context.user().sign(label, scheme, hash, digest),
    concurrently: (context, { label, scheme, hash, digest }) => context.user().signConcurrently(label, scheme, hash, digest),
  },
  verify: {
    code: 14,
    fields: ['spec', 'label', 'scheme', 'hash', 'digest', 'signature'],
    ...crypto,
    mechanism: ({ scheme }) => schemeMechanism[scheme],
    run: (context, { spec, label, scheme, hash, digest, signature }) => context.user().verify(spec, label, scheme, hash, digest, signature),
    concurrently: (context, { spec, label, scheme, hash, digest, signature }) =>
      context.user().verifyConcurrently(spec, label, scheme, hash, digest, signature),
  },
  generateMac: {
    code: 15,
    fields: ['label', 'hash', 'message'],
    ...crypto,
    mechanism: ({ hash }) => hmacMechanism[hash],
    run: (context, { label, hash, message }) => context.user().generateMac(label, hash, message),
    concurrently: (context, { label, hash, message }) => context.user().generateMacConcurrently(label, hash, message),
  },
  verifyMac: {
    code: 16,
    fields: ['label', 'hash', 'message', 'mac'],
    ...crypto,
    mechanism: ({ hash }) => hmacMechanism[hash],
    run: (context, { label, hash, message, mac }) => context.user().verifyMac(label, hash, message, mac),
    concurrently: (context, { label, hash, message, mac }) => context.user().verifyMacConcurrently(label, hash, message, mac),
  },
  generateRandom: {
    code: 17,
    fields: ['length'],
    ...crypto,
    run: (context, { length }) => context.user().generateRandom(length),
    concurrently: (context, { length }) => context.user().generateRandomConcurrently(length),
  },
  kekId: { code: 32, fields: ['label'], ...lookup, run: (context, { label }) => context.officer().kekId(label) ?? null },
  generateKek: {
    code: 33,
    fields: ['label', 'kekId'],
    ...step,
    run: (context, { label, kekId }) => {
      context.officer().generate(label, kekId);
      return null;
    },
  },
  createEnrollmentKey: { code: 34, fields: [], ...step, run: (context) => context.officer().createEnrollmentKey() },
  wrapKekFor: { code: 35, fields: ['label', 'peer'], ...step, run: (context, { label, peer }) => context.officer().wrapFor(label, peer) },
  receiveKek: {
    code: 36,
    fields: ['label', 'kekId', 'wrapped'],
    ...step,
    run: (context, { label, kekId, wrapped }) => {
      context.officer().receive(label, kekId, wrapped);
      return null;
    },
  },
  initializeToken: {
    code: 48,
    fields: ['label', 'soPin', 'userPin'],
    ...step,
    run: (context, { label, soPin, userPin }) => {
      context.initializeToken(label, soPin, userPin);
      return null;
    },
  },
};

/** A catalog entry with its name, for code-indexed lookups. */
export type NamedOperation = OperationDefinition<WorkerOperation> & { name: WorkerOperation };

/** Catalog entries by wire code (the worker's dispatch table). */
export const operationsByCode: ReadonlyMap<number, NamedOperation> = new Map(
  (Object.keys(operationCatalog) as WorkerOperation[]).map((name) => [
    operationCatalog[name].code,
    { ...(operationCatalog[name] as unknown as OperationDefinition<WorkerOperation>), name },
  ]),
);

/** Operations that change nothing and may be tried again on another appliance. */
export const idempotentOperations: ReadonlySet<WorkerOperation> = new Set(
  (Object.keys(operationCatalog) as WorkerOperation[]).filter((name) => operationCatalog[name].idempotent),
);

/** The error a worker gives for an operation its role does not run (or a code it does not know). */
export function operationNotInRole(op: string): BrokerError {
  return new BrokerError(Code.INTERNAL, `worker cannot perform ${op} in its role`, { reason: 'WORKER_OPERATION_UNKNOWN' });
}
