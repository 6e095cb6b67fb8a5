import { BrokerError, Code } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import type { Handle, PKCS11, Template, TokenInfo } from 'pkcs11js';
import { lookupCkr, translateCkr } from './ckr-table.js';
import type { TokenSelector } from './pkcs11-uri.js';

/** Who a session logs in as. `none` opens a public session (token set-up, probes). */
export type LoginRole = 'user' | 'so' | 'none';

/** Where a token is and how to log in to it. */
export interface TokenConnection {
  /** Path of the PKCS#11 module (shared library). */
  modulePath: string;
  selector: TokenSelector;
  role: LoginRole;
  /** The PIN for `role`. Held in memory only; never logged. */
  pin?: string;
}

/** Token facts reported in fleet status. */
export interface TokenDescription {
  label: string;
  serial: string;
  manufacturer: string;
  model: string;
  slotId: number;
}

/** Reads a PKCS#11 fixed-width, space-padded string. */
export function trimPadded(value: string): string {
  return value.replace(/[\s\0]+$/u, '');
}

function isPkcs11Failure(error: unknown): error is Error & { code: number } {
  if (!(error instanceof Error)) return false;
  const code: unknown = (error as Error & { code?: unknown }).code;
  return typeof code === 'number' && code !== 0;
}

/**
 * Runs one PKCS#11 function and translates its failure through the CKR table.
 * Errors that are not PKCS#11 return values (wrong argument types) are the
 * broker's own bugs and surface as INTERNAL.
 */
export function invoke<T>(fn: string, body: () => T): T {
  try {
    return body();
  } catch (error: unknown) {
    if (error instanceof BrokerError) throw error;
    if (isPkcs11Failure(error)) throw translateCkr(error.code, fn);
    throw new BrokerError(Code.INTERNAL, `${fn} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      reason: 'PKCS11_BINDING_ERROR',
    });
  }
}

function selectorMatches(info: TokenInfo, slot: Handle, selector: TokenSelector): boolean {
  if (selector.token !== undefined && trimPadded(info.label) !== selector.token) return false;
  if (selector.serial !== undefined && trimPadded(info.serialNumber) !== selector.serial) return false;
  if (selector.manufacturer !== undefined && trimPadded(info.manufacturerID) !== selector.manufacturer) return false;
  if (selector.model !== undefined && trimPadded(info.model) !== selector.model) return false;
  if (selector.slotId !== undefined && slot.readUIntLE(0, Math.min(slot.length, 6)) !== selector.slotId) return false;
  return true;
}

/**
 * One logged-in session on one token, with what a long-lived PKCS#11 client
 * needs and most pools lack: when the appliance restarts or drops the
 * session, the next call re-opens it, logs in again, forgets stale object
 * handles and tries once more.
 */
export class Pkcs11Token {
  readonly #connection: TokenConnection;
  #module: PKCS11 | undefined;
  #slot: Handle | undefined;
  #session: Handle | undefined;
  readonly #handles = new Map<string, Handle>();
  #description: TokenDescription | undefined;

  private constructor(connection: TokenConnection) {
    this.#connection = connection;
  }

  /** Loads the module, finds the token, opens a session and logs in. */
  static open(connection: TokenConnection): Pkcs11Token {
    const token = new Pkcs11Token(connection);
    token.#connect();
    return token;
  }

  /** Token facts. */
  get description(): TokenDescription {
    if (!this.#description) throw new BrokerError(Code.UNAVAILABLE, 'token is not connected');
    return this.#description;
  }

  /** The loaded module, for functions that take a slot rather than a session. */
  get module(): PKCS11 {
    if (!this.#module) throw new BrokerError(Code.UNAVAILABLE, 'PKCS#11 module is not loaded');
    return this.#module;
  }

  /** The slot of the token. */
  get slot(): Handle {
    if (!this.#slot) throw new BrokerError(Code.UNAVAILABLE, 'token is not connected');
    return this.#slot;
  }

  #connect(): void {
    const { modulePath, selector, role, pin } = this.#connection;
    if (!this.#module) {
      const module = new pkcs11js.PKCS11();
      invoke('load', () => module.load(modulePath));
      // Remote modules (p11-kit client) insist on OS locking; SoftHSM accepts it.
      try {
        invoke('C_Initialize', () => module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }));
      } catch (error: unknown) {
        // Several tokens of one module in one process share its initialisation.
        if (!(error instanceof BrokerError && error.reason === 'CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw error;
      }
      this.#module = module;
    }
    const module = this.#module;
    const slots = invoke('C_GetSlotList', () => module.C_GetSlotList(true));
    let found: { slot: Handle; info: TokenInfo } | undefined;
    for (const slot of slots) {
      const info = invoke('C_GetTokenInfo', () => module.C_GetTokenInfo(slot));
      if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
      if (selectorMatches(info, slot, selector)) {
        found = { slot, info };
        break;
      }
    }
    if (!found) {
      // Modules list tokens as of C_Initialize; start afresh next time to see a token initialised since.
      this.reset();
      throw new BrokerError(Code.UNAVAILABLE, `no initialised token matches ${JSON.stringify(selector)}`, {
        reason: 'TOKEN_NOT_FOUND',
        failureClass: 'appliance',
      });
    }
    this.#slot = found.slot;
    this.#description = {
      label: trimPadded(found.info.label),
      serial: trimPadded(found.info.serialNumber),
      manufacturer: trimPadded(found.info.manufacturerID),
      model: trimPadded(found.info.model),
      slotId: found.slot.readUIntLE(0, Math.min(found.slot.length, 6)),
    };
    const slot = found.slot;
    const session = invoke('C_OpenSession', () =>
      module.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION),
    );
    this.#session = session;
    if (role !== 'none') {
      const userType = role === 'so' ? pkcs11js.CKU_SO : pkcs11js.CKU_USER;
      try {
        invoke('C_Login', () => module.C_Login(session, userType, pin));
      } catch (error: unknown) {
        // Another session of this process may already be logged in (login state is per application).
        if (!(error instanceof BrokerError && error.reason === 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
      }
    }
  }

  /**
   * Reads the token's facts afresh. A token that was wiped and initialised
   * again answers with a new serial number (after the reconnect that its
   * stale session forces).
   */
  refreshDescription(): TokenDescription {
    return this.run((_session, module) => {
      const slot = this.slot;
      const info = invoke('C_GetTokenInfo', () => module.C_GetTokenInfo(slot));
      if (this.#description) this.#description = { ...this.#description, serial: trimPadded(info.serialNumber), label: trimPadded(info.label) };
      return this.description;
    });
  }

  /** Drops the session and everything tied to it; the next call reconnects. */
  reset(): void {
    this.#handles.clear();
    const module = this.#module;
    const session = this.#session;
    this.#session = undefined;
    if (module && session) {
      try {
        module.C_CloseSession(session);
      } catch {
        // The session is already gone on the token's side; nothing to release.
      }
    }
    if (module) {
      try {
        module.C_Finalize();
      } catch {
        // Finalizing a library that lost its device can fail; a fresh C_Initialize follows.
      }
      try {
        module.close();
      } catch {
        // Unloading is best effort.
      }
    }
    this.#module = undefined;
  }

  /**
   * Runs `body` with the session. A failure that leaves the session unusable
   * (device removed, session closed, not logged in) reconnects, and a stale
   * object handle is looked up again; either way the call is tried again, at
   * most twice.
   */
  run<T>(body: (session: Handle, module: PKCS11) => T): T {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!this.#session || !this.#module) this.#connect();
        return body(this.#session as Handle, this.#module as PKCS11);
      } catch (error: unknown) {
        if (attempt >= 2 || !(error instanceof BrokerError)) throw error;
        const ckr = error.details['ckr'];
        if (typeof ckr !== 'number') throw error;
        const fn = String(error.details['function'] ?? '');
        if (lookupCkr(ckr, fn).resetsSession) {
          this.reset();
          continue;
        }
        if (error.reason === 'CKR_OBJECT_HANDLE_INVALID' || error.reason === 'CKR_KEY_HANDLE_INVALID') {
          this.#handles.clear();
          continue;
        }
        throw error;
      }
    }
  }

  /** Finds objects matching `template` (all of them). */
  findObjects(template: Template): Handle[] {
    return this.run((session, module) => {
      invoke('C_FindObjectsInit', () => module.C_FindObjectsInit(session, template));
      const found: Handle[] = [];
      try {
        for (;;) {
          const batch = invoke('C_FindObjects', () => module.C_FindObjects(session, 64));
          if (batch.length === 0) break;
          found.push(...batch);
        }
      } finally {
        invoke('C_FindObjectsFinal', () => module.C_FindObjectsFinal(session));
      }
      return found;
    });
  }

  /**
   * The handle of the one object of `objectClass` labelled `label`, cached.
   * Returns undefined when the token has no such object.
   */
  findByLabel(objectClass: number, label: string): Handle | undefined {
    const cacheKey = `${String(objectClass)}:${label}`;
    const cached = this.#handles.get(cacheKey);
    if (cached) return cached;
    const [handle] = this.findObjects([
      { type: pkcs11js.CKA_CLASS, value: objectClass },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    if (handle) this.#handles.set(cacheKey, handle);
    return handle;
  }

  /** Forgets cached handles for `label` (after the objects were destroyed). */
  forget(label: string): void {
    for (const key of [...this.#handles.keys()]) {
      if (key.endsWith(`:${label}`)) this.#handles.delete(key);
    }
  }

  /** Logs out and releases the module. */
  close(): void {
    const module = this.#module;
    const session = this.#session;
    if (module && session && this.#connection.role !== 'none') {
      try {
        module.C_Logout(session);
      } catch {
        // Already logged out or the device is gone.
      }
    }
    this.reset();
  }
}
