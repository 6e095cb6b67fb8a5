import type { Handle, Mechanism, PKCS11 } from 'pkcs11js';
import { invoke, invokeAsync } from './pkcs11-call.js';

/** What each single-part operation gives back. */
export interface SinglePartOutcome {
  sign: Buffer;
  encrypt: Buffer;
  decrypt: Buffer;
  verify: boolean;
}

/** A single-part PKCS#11 operation: `C_…Init` with a key, then one call with the data. */
export type SinglePartKind = keyof SinglePartOutcome;

/** One single-part operation on the key object `label` of `objectClass`. */
export interface SinglePartCall<K extends SinglePartKind> {
  kind: K;
  objectClass: number;
  label: string;
  mechanism: Mechanism;
  input: Buffer;
  /** The output buffer; for `verify`, the signature. */
  second: Buffer;
}

interface SinglePartFunctions<R> {
  init: string;
  name: string;
  start(module: PKCS11, session: Handle, mechanism: Mechanism, key: Handle): void;
  now(module: PKCS11, session: Handle, input: Buffer, second: Buffer): R;
  /** The same call on the libuv thread pool. */
  later(module: PKCS11, session: Handle, input: Buffer, second: Buffer): Promise<R>;
}

const functions: { [K in SinglePartKind]: SinglePartFunctions<SinglePartOutcome[K]> } = {
  sign: {
    init: 'C_SignInit',
    name: 'C_Sign',
    start: (module, session, mechanism, key) => module.C_SignInit(session, mechanism, key),
    now: (module, session, input, output) => module.C_Sign(session, input, output),
    later: (module, session, input, output) => module.C_SignAsync(session, input, output),
  },
  encrypt: {
    init: 'C_EncryptInit',
    name: 'C_Encrypt',
    start: (module, session, mechanism, key) => module.C_EncryptInit(session, mechanism, key),
    now: (module, session, input, output) => module.C_Encrypt(session, input, output),
    later: (module, session, input, output) => module.C_EncryptAsync(session, input, output),
  },
  decrypt: {
    init: 'C_DecryptInit',
    name: 'C_Decrypt',
    start: (module, session, mechanism, key) => module.C_DecryptInit(session, mechanism, key),
    now: (module, session, input, output) => module.C_Decrypt(session, input, output),
    later: (module, session, input, output) => module.C_DecryptAsync(session, input, output),
  },
  verify: {
    init: 'C_VerifyInit',
    name: 'C_Verify',
    start: (module, session, mechanism, key) => module.C_VerifyInit(session, mechanism, key),
    now: (module, session, input, signature) => module.C_Verify(session, input, signature),
    later: (module, session, input, signature) => module.C_VerifyAsync(session, input, signature),
  },
};

/** Runs `call` with `key` on `session`, on this thread. */
export function singlePart<K extends SinglePartKind>(module: PKCS11, session: Handle, call: SinglePartCall<K>, key: Handle): SinglePartOutcome[K] {
  const part = functions[call.kind] as SinglePartFunctions<SinglePartOutcome[K]>;
  invoke(part.init, () => part.start(module, session, call.mechanism, key));
  return invoke(part.name, () => part.now(module, session, call.input, call.second));
}

/**
 * Runs `call` with `key` on `session`: the initialisation on this thread
 * (it is quick), the operation itself on the libuv thread pool, so that
 * other sessions' calls run meanwhile.
 */
export function singlePartConcurrently<K extends SinglePartKind>(
  module: PKCS11,
  session: Handle,
  call: SinglePartCall<K>,
  key: Handle,
): Promise<SinglePartOutcome[K]> {
  const part = functions[call.kind] as SinglePartFunctions<SinglePartOutcome[K]>;
  invoke(part.init, () => part.start(module, session, call.mechanism, key));
  return invokeAsync(part.name, () => part.later(module, session, call.input, call.second));
}
