import { BrokerError, Code } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import type { Handle, Template } from 'pkcs11js';
import { invoke } from './pkcs11-call.js';
import type { Pkcs11Token } from './pkcs11-token.js';

/** An RSA public key offered by a token that wants to receive the fleet KEK. */
export interface EnrollmentKey {
  modulus: Buffer;
  exponent: Buffer;
}

const enrollmentLabel = 'hsmb-enrollment';

function kekTemplate(label: string, kekId: string): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_TOKEN, value: true },
    // Public so that user sessions can wrap with it; sensitive so nobody can read it.
    { type: pkcs11js.CKA_PRIVATE, value: false },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
    { type: pkcs11js.CKA_TRUSTED, value: true },
    { type: pkcs11js.CKA_WRAP_WITH_TRUSTED, value: true },
    { type: pkcs11js.CKA_WRAP, value: true },
    { type: pkcs11js.CKA_UNWRAP, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: Buffer.from(kekId, 'utf8') },
  ];
}

/** SoftHSM 2.6 accepts RSA-OAEP only with SHA-1 and MGF1-SHA-1. */
const oaep = {
  mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
  parameter: {
    type: pkcs11js.CK_PARAMS_RSA_OAEP,
    hashAlg: pkcs11js.CKM_SHA_1,
    mgf: pkcs11js.CKG_MGF1_SHA1,
    source: 1, // CKZ_DATA_SPECIFIED
  },
};

/**
 * Security-officer operations that establish the fleet key-encryption key.
 *
 * Only the SO can mark an object CKA_TRUSTED, and only while creating it; the
 * KEK is trusted (so keys marked CKA_WRAP_WITH_TRUSTED may be wrapped under
 * it) and itself wrap-with-trusted (so it can only leave a token under another
 * trusted key: the receiving token's enrollment key, imported by this SO).
 */
export class FleetKek {
  readonly #token: Pkcs11Token;
  #enrollment: { publicKey: Handle; privateKey: Handle } | undefined;

  /** `token` must be logged in as SO. */
  constructor(token: Pkcs11Token) {
    this.#token = token;
  }

  /** The KEK's id on this token, or undefined when the token has no KEK. */
  kekId(label: string): string | undefined {
    const handle = this.#token.findByLabel(pkcs11js.CKO_SECRET_KEY, label);
    if (!handle) return undefined;
    const [id] = this.#token.run((session, module) =>
      invoke('C_GetAttributeValue', () => module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_ID }])),
    );
    return id?.value.toString('utf8');
  }

  /** Creates the fleet KEK on this token (the first appliance of a new fleet). */
  generate(label: string, kekId: string): void {
    if (this.kekId(label) !== undefined) {
      throw new BrokerError(Code.ALREADY_EXISTS, `token already holds a fleet KEK labelled ${label}`);
    }
    this.#token.run((session, module) =>
      invoke('C_GenerateKey', () =>
        module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          ...kekTemplate(label, kekId),
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        ]),
      ),
    );
  }

  /** Makes a session-only RSA key pair and returns its public half, to receive the KEK under. */
  createEnrollmentKey(): EnrollmentKey {
    this.#discardEnrollment();
    const pair = this.#token.run((session, module) =>
      invoke('C_GenerateKeyPair', () =>
        module.C_GenerateKeyPair(
          session,
          { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
          [
            { type: pkcs11js.CKA_TOKEN, value: false },
            { type: pkcs11js.CKA_PRIVATE, value: false },
            { type: pkcs11js.CKA_MODULUS_BITS, value: 2048 },
            { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
            { type: pkcs11js.CKA_WRAP, value: true },
            { type: pkcs11js.CKA_LABEL, value: enrollmentLabel },
          ],
          [
            { type: pkcs11js.CKA_TOKEN, value: false },
            { type: pkcs11js.CKA_PRIVATE, value: false },
            { type: pkcs11js.CKA_SENSITIVE, value: true },
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_UNWRAP, value: true },
            { type: pkcs11js.CKA_LABEL, value: enrollmentLabel },
          ],
        ),
      ),
    );
    this.#enrollment = pair;
    const [modulus, exponent] = this.#token.run((session, module) =>
      invoke('C_GetAttributeValue', () =>
        module.C_GetAttributeValue(session, pair.publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]),
      ),
    );
    if (!modulus || !exponent) throw new BrokerError(Code.INTERNAL, 'enrollment key has no modulus');
    return { modulus: Buffer.from(modulus.value), exponent: Buffer.from(exponent.value) };
  }

  /** Wraps this token's KEK for a peer: imports its enrollment key as trusted, wraps with RSA-OAEP. */
  wrapFor(label: string, peer: EnrollmentKey): Buffer {
    const kek = this.#token.findByLabel(pkcs11js.CKO_SECRET_KEY, label);
    if (!kek) throw new BrokerError(Code.FAILED_PRECONDITION, `token holds no fleet KEK labelled ${label}`);
    const trusted = this.#token.run((session, module) =>
      invoke('C_CreateObject', () =>
        module.C_CreateObject(session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_PRIVATE, value: false },
          { type: pkcs11js.CKA_TRUSTED, value: true },
          { type: pkcs11js.CKA_WRAP, value: true },
          { type: pkcs11js.CKA_MODULUS, value: peer.modulus },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: peer.exponent },
          { type: pkcs11js.CKA_LABEL, value: `${enrollmentLabel}-peer` },
        ]),
      ),
    );
    try {
      return this.#token.run((session, module) =>
        invoke('C_WrapKey', () => Buffer.from(module.C_WrapKey(session, oaep, trusted, kek, Buffer.alloc(1024)))),
      );
    } finally {
      this.#token.run((session, module) => invoke('C_DestroyObject', () => module.C_DestroyObject(session, trusted)));
    }
  }

  /** Unwraps a KEK wrapped by {@link wrapFor} with this token's enrollment key, marking it trusted. */
  receive(label: string, kekId: string, wrapped: Buffer): void {
    const enrollment = this.#enrollment;
    if (!enrollment) throw new BrokerError(Code.FAILED_PRECONDITION, 'no enrollment key: call createEnrollmentKey first');
    if (this.kekId(label) !== undefined) {
      throw new BrokerError(Code.ALREADY_EXISTS, `token already holds a fleet KEK labelled ${label}`);
    }
    try {
      this.#token.run((session, module) =>
        invoke('C_UnwrapKey', () => module.C_UnwrapKey(session, oaep, enrollment.privateKey, wrapped, kekTemplate(label, kekId))),
      );
    } finally {
      this.#discardEnrollment();
    }
  }

  /** Destroys the fleet KEK on this token (used when a fleet is torn down in tests or re-keyed). */
  destroy(label: string): void {
    const handle = this.#token.findByLabel(pkcs11js.CKO_SECRET_KEY, label);
    if (!handle) return;
    this.#token.run((session, module) => invoke('C_DestroyObject', () => module.C_DestroyObject(session, handle)));
    this.#token.forget(label);
  }

  #discardEnrollment(): void {
    const pair = this.#enrollment;
    this.#enrollment = undefined;
    if (!pair) return;
    for (const handle of [pair.publicKey, pair.privateKey]) {
      try {
        this.#token.run((session, module) => invoke('C_DestroyObject', () => module.C_DestroyObject(session, handle)));
      } catch {
        // Session objects vanish with the session anyway.
      }
    }
  }
}
