import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import { recordKey } from '../call-pipeline.js';
import type { CallContext, KeyAccess } from '../call-pipeline.js';
import type { Logger } from '../logger.js';
import { PolicyError, parsePolicy } from './access-policy.js';
import type { AccessPolicy, Grant } from './access-policy.js';
import { keyScopedMethods } from './method-catalog.js';
import { unidentifiedIdentity } from './peer-identity.js';
import { RequestQuotas } from './request-quotas.js';

function denied(context: CallContext, onKey?: string): BrokerError {
  return new BrokerError(Code.PERMISSION_DENIED, `${quoteInput(context.identity)} may not call ${context.method}${onKey === undefined ? '' : ` on key ${quoteInput(onKey)}`}`, {
    reason: 'ACCESS_DENIED',
    details: { identity: quoteInput(context.identity), operation: context.method },
  });
}

function contextSatisfies(grant: Grant, encryptionContext: Readonly<Record<string, string>>): boolean {
  return Object.entries(grant.encryptionContext).every(([name, value]) => encryptionContext[name] === value);
}

/** Options for {@link AccessControl}. */
export interface AccessControlOptions {
  policyFile: string;
  log: Logger;
  /** Clock for the quota buckets (ms, monotonic). */
  clock?: () => number;
}

/**
 * Default-deny authorization from the policy file, plus per-identity quotas.
 * The file is read once at start-up (a bad file stops the broker) and then
 * whenever it changes: a valid new file replaces the policy for the next
 * call; an invalid one is logged with its line and field and the previous
 * policy stays.
 */
export class AccessControl implements KeyAccess {
  readonly #file: string;
  readonly #log: Logger;
  readonly #quotas: RequestQuotas;
  #policy: AccessPolicy;
  #text: string;
  #watching = false;
  #reloads = 0;
  #lastError: string | undefined;

  /** Reads and validates the policy; throws {@link PolicyError} when it cannot be used. */
  constructor(options: AccessControlOptions) {
    this.#file = options.policyFile;
    this.#log = options.log;
    this.#quotas = new RequestQuotas(options.clock);
    this.#text = this.#read();
    this.#policy = parsePolicy(this.#text, this.#file);
    this.#quotas.setRules(this.#policy.quotas);
  }

  /** The policy in force. */
  get policy(): AccessPolicy {
    return this.#policy;
  }

  /** How many times a changed file replaced the policy since start-up. */
  get reloads(): number {
    return this.#reloads;
  }

  /** Why the last changed file was refused, if it was. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  #read(): string {
    try {
      return readFileSync(this.#file, 'utf8');
    } catch (error: unknown) {
      throw new PolicyError(`${this.#file}: cannot read the policy file: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Re-reads the file now; returns whether a new policy took effect. */
  reload(): boolean {
    let text: string;
    let policy: AccessPolicy;
    try {
      text = this.#read();
      if (text === this.#text) {
        // Put back as it was: the policy in force is the file again.
        this.#lastError = undefined;
        return false;
      }
      policy = parsePolicy(text, this.#file);
    } catch (error: unknown) {
      this.#lastError = error instanceof Error ? error.message : String(error);
      this.#log.error('access policy refused; the previous policy stays in force', { error: this.#lastError });
      return false;
    }
    this.#text = text;
    this.#policy = policy;
    this.#quotas.setRules(policy.quotas);
    this.#reloads += 1;
    this.#lastError = undefined;
    this.#log.warn('access policy reloaded', { file: this.#file, grants: policy.grants.length, quotas: policy.quotas.length });
    return true;
  }

  /** Polls the file every `intervalMs`. */
  watch(intervalMs: number): void {
    if (this.#watching) return;
    this.#watching = true;
    watchFile(this.#file, { interval: intervalMs, persistent: false }, () => this.reload());
  }

  /** Stops watching the file. */
  close(): void {
    if (!this.#watching) return;
    this.#watching = false;
    unwatchFile(this.#file);
  }

  /**
   * The call-level check, before the handler: some grant for this identity
   * must allow the method at all (keys are checked later, by the handler),
   * then the identity's quota must have room.
   */
  admit(context: CallContext): void {
    if (context.identity === unidentifiedIdentity) {
      throw new BrokerError(Code.UNAUTHENTICATED, 'the client certificate names no single identity (one SPIFFE URI SAN, or a plain subject CN)', {
        reason: 'AMBIGUOUS_IDENTITY',
      });
    }
    const allowed = this.#policy.grants.some((grant) => grant.methods.has(context.method) && grant.matchesIdentity(context.identity));
    if (!allowed) throw denied(context);
    this.#quotas.charge(context.identity, context.method);
  }

  key(context: CallContext, keyId: string, encryptionContext: Readonly<Record<string, string>> = {}, keyVersion?: number): void {
    if (!this.#allows(context, keyId, encryptionContext)) throw denied(context, keyId);
    recordKey(context, keyId, keyVersion);
  }

  visible(context: CallContext, keyId: string): boolean {
    return this.#allows(context, keyId, undefined);
  }

  /** `encryptionContext` undefined: visibility only, so conditions do not hide a key from a listing. */
  #allows(context: CallContext, keyId: string, encryptionContext: Readonly<Record<string, string>> | undefined): boolean {
    if (!keyScopedMethods.has(context.method)) return false;
    return this.#policy.grants.some(
      (grant) =>
        grant.methods.has(context.method) &&
        grant.matchesIdentity(context.identity) &&
        (grant.keys === undefined || grant.keys.some((matches) => matches(keyId))) &&
        (encryptionContext === undefined || contextSatisfies(grant, encryptionContext)),
    );
  }
}
