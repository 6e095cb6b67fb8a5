import type {
  EnrollmentKey,
  HashName,
  KeyMaterialSpec,
  KeyObjectDescription,
  KeyObjectInfo,
  SignatureScheme,
  TokenDescription,
  WrappedKey,
} from '@hsm-broker/pkcs11';

/**
 * Every operation an appliance worker process performs, with its argument
 * and result. The parent calls them over IPC; the worker dispatches them to
 * libs/pkcs11. PINs cross this boundary only inside `initializeToken` and
 * the worker's init message, never in argv or the environment.
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

/** Operations that change nothing and may be tried again on another appliance. */
export const idempotentOperations: ReadonlySet<WorkerOperation> = new Set<WorkerOperation>([
  'describe',
  'probe',
  'hasKey',
  'wrapKey',
  'listKeys',
  'describeKeys',
  'publicKey',
  'encrypt',
  'decrypt',
  'sign',
  'verify',
  'generateMac',
  'verifyMac',
  'generateRandom',
  'kekId',
]);
