import { BrokerError, Code } from '@hsm-broker/errors';
import pkcs11js from 'pkcs11js';
import type { Handle, PKCS11, Template, TokenInfo } from 'pkcs11js';
import { invoke, recoveryFor, staleViewReason } from './pkcs11-call.js';
import type { Recovery } from './pkcs11-call.js';
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

function selectorMatches(info: TokenInfo, slot: Handle, selector: TokenSelector): boolean {
  if (selector.token !== undefined && trimPadded(info.label) !== selector.token) return false;
  if (selector.serial !== undefined && trimPadded(info.serialNumber) !== selector.serial) return false;
  if (selector.manufacturer !== undefined && trimPadded(info.manufacturerID) !== selector.manufacturer) return false;
  if (selector.model !== undefined && trimPadded(info.model) !== selector.model) return false;
  if (selector.slotId !== undefined && slot.readUIntLE(0, Math.min(slot.length, 6)) !== selector.slotId) return false;
  return true;
}

/**
 * One logged-in token, with what a long-lived PKCS#11 client needs and most
 * pools lack: when the appliance restarts or drops the session, the next
 * call re-opens it, logs in again, forgets stale object handles and tries
 * once more.
 *
 * Calls through {@link run} use the token's main session on the calling
 * thread. Calls through {@link runConcurrently} each take a session of their
 * own from a pool (opened on demand; login state is per application, so
 * they share the main session's login) and may run PKCS#11 functions on
 * the libuv thread pool, several at once. Reconnecting finalizes the module,
 * which no other thread may be inside: it waits until no concurrent call is
 * running, and the caller of {@link run} must not overlap it with them.
 */
export class Pkcs11Token {
  readonly #connection: TokenConnection;
  #module: PKCS11 | undefined;
  #slot: Handle | undefined;
  #session: Handle | undefined;
  readonly #handles = new Map<string, Handle>();
  #description: TokenDescription | undefined;
  /** Pooled sessions not in use. */
  #idleSessions: Handle[] = [];
  /** Concurrent calls holding a pooled session. */
  #busy = 0;
  /** Counts reconnects: a session or handle from an older generation is gone. */
  #generation = 0;
  /** A reconnect waiting for the concurrent calls to finish; new ones wait for it. */
  #reconnecting: Promise<void> | undefined;
  readonly #idleWaiters: (() => void)[] = [];
  /** {@link run} calls on the stack: only the outermost one recovers. */
  #depth = 0;

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

  /** Drops the sessions and everything tied to them; the next call reconnects. */
  reset(): void {
    if (this.#busy > 0) throw new BrokerError(Code.INTERNAL, 'token reset while concurrent calls run', { reason: 'TOKEN_RESET_WHILE_BUSY' });
    this.#handles.clear();
    this.#generation++;
    this.#idleSessions = [];
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
        // Closes the pooled sessions too.
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
   * Runs `body` with the main session. A failure that leaves the session
   * unusable (device removed, session closed, not logged in) reconnects, and
   * a stale object handle is looked up again; either way the call is tried
   * again, at most twice. Inside a concurrent call (see
   * {@link runConcurrently}) the failure is passed up instead: that call
   * recovers once the others have finished. So is a failure inside a `run`
   * nested in another one's body (a key lookup): reconnecting there would
   * unload the module and close the session the outer body still holds, so
   * the outer `run` recovers and tries its whole body again.
   */
  run<T>(body: (session: Handle, module: PKCS11) => T): T {
    let staleViewRetried = false;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!this.#session || !this.#module) this.#connect();
        this.#depth++;
        try {
          return body(this.#session as Handle, this.#module as PKCS11);
        } finally {
          this.#depth--;
        }
      } catch (error: unknown) {
        const outermost = this.#depth === 0 && this.#busy === 0;
        const recovery = attempt < 2 && outermost ? recoveryFor(error, staleViewRetried) : undefined;
        if (recovery === undefined) throw error;
        if (recovery === 'reconnect') {
          staleViewRetried ||= error instanceof BrokerError && error.reason === staleViewReason;
          this.reset();
        } else {
          this.#handles.clear();
        }
      }
    }
  }

  /**
   * Runs `body` on a pooled session of its own, concurrently with other such
   * calls; `body` may await pkcs11js' `…Async` functions. It recovers as
   * {@link run} does, except that a reconnect first waits until no other
   * concurrent call runs (and holds new ones back meanwhile), and happens
   * once however many calls failed with the same lost session.
   */
  async runConcurrently<T>(body: (session: Handle, module: PKCS11) => Promise<T> | T): Promise<T> {
    let staleViewRetried = false;
    for (let attempt = 0; ; attempt++) {
      while (this.#reconnecting) await this.#reconnecting;
      const generation = this.#generation;
      let recovery: Recovery;
      let session: Handle | undefined;
      this.#busy++;
      try {
        if (!this.#session || !this.#module) this.#connect();
        const module = this.#module as PKCS11;
        session = this.#idleSessions.pop() ?? this.#openSession(module);
        return await body(session, module);
      } catch (error: unknown) {
        recovery = attempt < 2 ? recoveryFor(error, staleViewRetried) : undefined;
        if (recovery === undefined) throw error;
        staleViewRetried ||= error instanceof BrokerError && error.reason === staleViewReason;
      } finally {
        this.#busy--;
        // A session that lost its token is not reused; a reconnect closes it anyway.
        if (session && recovery !== 'reconnect' && generation === this.#generation) this.#idleSessions.push(session);
        if (this.#busy === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
      }
      if (recovery === 'reconnect') await this.#reconnectWhenIdle(generation);
      else this.#handles.clear();
    }
  }

  #openSession(module: PKCS11): Handle {
    const slot = this.slot;
    return invoke('C_OpenSession', () => module.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION));
  }

  /** Reconnects once no concurrent call runs, unless a reconnect since `generation` already did. */
  async #reconnectWhenIdle(generation: number): Promise<void> {
    if (generation !== this.#generation) return;
    const reconnect =
      this.#reconnecting ??
      (async () => {
        while (this.#busy > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
        this.reset();
      })();
    this.#reconnecting = reconnect;
    try {
      await reconnect;
    } finally {
      if (this.#reconnecting === reconnect) this.#reconnecting = undefined;
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
