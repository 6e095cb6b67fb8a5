import { BrokerError, Code } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import { invoke } from './pkcs11-call.js';
import { trimPadded } from './pkcs11-token.js';

/** What {@link initializeToken} needs. PINs travel in memory only. */
export interface TokenInitialization {
  modulePath: string;
  label: string;
  soPin: string;
  userPin: string;
}

/**
 * Initialises a fresh token in the module's first free slot (SoftHSM always
 * offers one) and sets the user PIN. Done through the PKCS#11 API rather than
 * `softhsm2-util`, which would put both PINs on a command line.
 */
export function initializeToken(init: TokenInitialization): void {
  if (init.label.length === 0 || Buffer.byteLength(init.label) > 32) {
    throw BrokerError.invalidArgument('label', 'token labels are 1 to 32 bytes');
  }
  const module = new pkcs11js.PKCS11();
  invoke('load', () => module.load(init.modulePath));
  invoke('C_Initialize', () => module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }));
  try {
    const slots = invoke('C_GetSlotList', () => module.C_GetSlotList(true));
    for (const slot of slots) {
      const info = invoke('C_GetTokenInfo', () => module.C_GetTokenInfo(slot));
      if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0 && trimPadded(info.label) === init.label) {
        throw new BrokerError(Code.ALREADY_EXISTS, `a token labelled ${init.label} already exists`);
      }
    }
    const free = slots.find(
      (slot) => (invoke('C_GetTokenInfo', () => module.C_GetTokenInfo(slot)).flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0,
    );
    if (!free) throw new BrokerError(Code.FAILED_PRECONDITION, 'the PKCS#11 module has no free slot for a new token');
    // PKCS#11 labels are 32 bytes padded with spaces; pkcs11js pads with NULs unless told.
    invoke('C_InitToken', () => module.C_InitToken(free, init.soPin, init.label.padEnd(32, ' ')));
    const slot = invoke('C_GetSlotList', () => module.C_GetSlotList(true)).find(
      (candidate) => trimPadded(invoke('C_GetTokenInfo', () => module.C_GetTokenInfo(candidate)).label) === init.label,
    );
    if (!slot) throw new BrokerError(Code.INTERNAL, `token ${init.label} vanished after initialisation`);
    const session = invoke('C_OpenSession', () =>
      module.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION),
    );
    invoke('C_Login', () => module.C_Login(session, pkcs11js.CKU_SO, init.soPin));
    invoke('C_InitPIN', () => module.C_InitPIN(session, init.userPin));
    invoke('C_Logout', () => module.C_Logout(session));
    invoke('C_CloseSession', () => module.C_CloseSession(session));
  } finally {
    try {
      module.C_Finalize();
    } catch {
      // Nothing to release.
    }
  }
}
