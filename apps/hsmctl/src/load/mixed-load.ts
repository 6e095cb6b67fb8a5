import { randomBytes } from 'node:crypto';
import {
  DataKeySpec,
  KeySpec,
  KeyUsage,
  MacAlgorithm,
  MessageType,
  SigningAlgorithm,
  type BrokerClient,
} from '@hsm-broker/client';
import { BrokerError, codeName } from '@hsm-broker/errors';
import { digestOf, loadOperations, toBase64, type CallRecord, type LoadOperation } from './call-history.js';
import type { LoadProfile } from './load-profile.js';

/** Wall-clock milliseconds since the epoch, with sub-millisecond precision. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The keys a load process works on. */
export interface LoadKeys {
  aes: string;
  hmac: string;
  ec: string;
  /** Prefix of the keys CreateKey makes. */
  created: string;
}

/** The keys of the load process with this id prefix. */
export function loadKeys(prefix: string): LoadKeys {
  return { aes: `${prefix}/aes`, hmac: `${prefix}/hmac`, ec: `${prefix}/ec`, created: `${prefix}/created` };
}

/** What {@link MixedLoad.stop} reports beyond the records. */
export interface LoadTotals {
  issued: number;
  /** Calls due while `maxInFlight` were in flight, not issued. */
  shed: number;
}

/** Outputs kept for the calls that use them later (Decrypt, Verify, VerifyMac). */
interface Pools {
  sealed: { ciphertext: Buffer; digest: string }[];
  signed: { message: Buffer; signature: Buffer; version: number }[];
  macs: { message: Buffer; mac: Buffer; version: number }[];
}

const poolSize = 256;

function remember<T>(pool: T[], item: T): void {
  pool.push(item);
  if (pool.length > poolSize) pool.splice(0, pool.length - poolSize);
}

function pick<T>(pool: readonly T[]): T | undefined {
  return pool.length === 0 ? undefined : pool[Math.floor(Math.random() * pool.length)];
}

/**
 * An open-loop mixed load on one broker client: each operation is issued at
 * its own rate whatever the answers (a slow broker does not slow the load,
 * as it would not slow real callers), each call carries a deadline, and
 * every call is reported as a {@link CallRecord}.
 */
export class MixedLoad {
  readonly #client: BrokerClient;
  readonly #profile: LoadProfile;
  readonly #keys: LoadKeys;
  readonly #process: number;
  readonly #onRecord: (record: CallRecord) => void;
  readonly #pools: Pools = { sealed: [], signed: [], macs: [] };
  readonly #inFlight = new Set<Promise<void>>();
  #seq = 0;
  #shed = 0;
  #created = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #lag = new LoopLag();

  constructor(
    client: BrokerClient,
    profile: LoadProfile,
    options: { prefix: string; process?: number; onRecord: (record: CallRecord) => void },
  ) {
    this.#client = client;
    this.#profile = profile;
    this.#keys = loadKeys(options.prefix);
    this.#process = options.process ?? 0;
    this.#onRecord = options.onRecord;
  }

  /**
   * Creates the keys the load works on and one output of each kind, before
   * any fault: these calls are set-up, not part of the history.
   */
  async prepare(): Promise<void> {
    const deadline = { deadlineMs: 120_000 };
    await this.#client.createKey({ keyId: this.#keys.aes, keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT }, deadline);
    await this.#client.createKey({ keyId: this.#keys.hmac, keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC }, deadline);
    await this.#client.createKey({ keyId: this.#keys.ec, keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY }, deadline);
  }

  /** Starts issuing calls; call {@link stop} to end. */
  start(): void {
    const startedAt = performance.now();
    const issued = Object.fromEntries(loadOperations.map((op) => [op, 0])) as Record<LoadOperation, number>;
    const tick = (): void => {
      const elapsedSeconds = (performance.now() - startedAt) / 1000;
      for (const op of loadOperations) {
        const due = Math.floor(this.#profile.rates[op] * elapsedSeconds) - issued[op];
        for (let index = 0; index < due; index += 1) {
          issued[op] += 1;
          if (this.#inFlight.size >= this.#profile.maxInFlight) {
            this.#shed += 1;
            continue;
          }
          this.#issue(op);
        }
      }
    };
    this.#timer = setInterval(tick, 5);
    this.#lag.start();
  }

  /** Stops issuing and waits for the calls in flight. */
  async stop(): Promise<LoadTotals> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#lag.stop();
    return { issued: this.#seq, shed: this.#shed };
  }

  #issue(op: LoadOperation): void {
    const seq = this.#seq;
    this.#seq += 1;
    const call = this.#call(op, seq).finally(() => this.#inFlight.delete(call));
    this.#inFlight.add(call);
  }

  async #call(op: LoadOperation, seq: number): Promise<void> {
    // Key generation on a quorum of appliances takes longer than a crypto call.
    const deadlineMs = op === 'CreateKey' || op === 'RotateKey' ? this.#profile.writeDeadlineMs : this.#profile.deadlineMs;
    const options = { deadlineMs };
    const payload = randomBytes(this.#profile.payloadBytes);
    const record: CallRecord = {
      type: 'call',
      seq,
      process: this.#process,
      op,
      keyId: '',
      inputDigest: '',
      code: 'OK',
      startMs: 0,
      endMs: 0,
      deadlineMs,
    };
    // What to do with the answer, set by each case before the call is made.
    let run: () => Promise<void>;
    switch (op) {
      case 'Encrypt':
        record.keyId = this.#keys.aes;
        record.inputDigest = digestOf(payload);
        run = async () => {
          const response = await this.#client.encrypt({ keyId: record.keyId, plaintext: payload }, options);
          record.keyVersion = response.keyVersion;
          record.ciphertext = toBase64(response.ciphertext);
          record.plaintextDigest = record.inputDigest;
          remember(this.#pools.sealed, { ciphertext: response.ciphertext, digest: record.inputDigest });
        };
        break;
      case 'Decrypt': {
        const sealed = pick(this.#pools.sealed);
        if (sealed === undefined) return;
        record.keyId = this.#keys.aes;
        record.inputDigest = digestOf(sealed.ciphertext);
        run = async () => {
          const response = await this.#client.decrypt({ ciphertext: sealed.ciphertext }, options);
          record.keyVersion = response.keyVersion;
          record.correct = digestOf(response.plaintext) === sealed.digest;
        };
        break;
      }
      case 'Sign':
        record.keyId = this.#keys.ec;
        record.inputDigest = digestOf(payload);
        record.algorithm = 'ECDSA_SHA_256';
        run = async () => {
          const response = await this.#client.sign(
            { keyId: record.keyId, message: payload, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 },
            options,
          );
          record.keyVersion = response.keyVersion;
          record.message = toBase64(payload);
          record.signature = toBase64(response.signature);
          remember(this.#pools.signed, { message: payload, signature: response.signature, version: response.keyVersion });
        };
        break;
      case 'Verify': {
        const signed = pick(this.#pools.signed);
        if (signed === undefined) return;
        record.keyId = this.#keys.ec;
        record.inputDigest = digestOf(signed.message);
        run = async () => {
          const response = await this.#client.verify(
            {
              keyId: record.keyId,
              keyVersion: signed.version,
              message: signed.message,
              messageType: MessageType.RAW,
              signature: signed.signature,
              signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
            },
            options,
          );
          record.keyVersion = response.keyVersion;
          record.correct = response.signatureValid;
        };
        break;
      }
      case 'GenerateMac':
        record.keyId = this.#keys.hmac;
        record.inputDigest = digestOf(payload);
        run = async () => {
          const response = await this.#client.generateMac(
            { keyId: record.keyId, message: payload, macAlgorithm: MacAlgorithm.HMAC_SHA_256 },
            options,
          );
          record.keyVersion = response.keyVersion;
          remember(this.#pools.macs, { message: payload, mac: response.mac, version: response.keyVersion });
        };
        break;
      case 'VerifyMac': {
        const mac = pick(this.#pools.macs);
        if (mac === undefined) return;
        record.keyId = this.#keys.hmac;
        record.inputDigest = digestOf(mac.message);
        run = async () => {
          const response = await this.#client.verifyMac(
            {
              keyId: record.keyId,
              keyVersion: mac.version,
              message: mac.message,
              mac: mac.mac,
              macAlgorithm: MacAlgorithm.HMAC_SHA_256,
            },
            options,
          );
          record.keyVersion = response.keyVersion;
          record.correct = response.macValid;
        };
        break;
      }
      case 'GenerateDataKey':
        record.keyId = this.#keys.aes;
        record.inputDigest = digestOf(Buffer.from('AES_256'));
        run = async () => {
          const response = await this.#client.generateDataKey(
            { keyId: record.keyId, keySpec: DataKeySpec.AES_256 },
            options,
          );
          record.keyVersion = response.keyVersion;
          record.ciphertext = toBase64(response.ciphertextBlob);
          record.plaintextDigest = digestOf(response.plaintext);
          // The data key is test material, but treat it like a real one.
          response.plaintext.fill(0);
        };
        break;
      case 'CreateKey': {
        this.#created += 1;
        record.keyId = `${this.#keys.created}-${String(this.#created)}`;
        record.inputDigest = digestOf(Buffer.from(record.keyId));
        run = async () => {
          const response = await this.#client.createKey(
            { keyId: record.keyId, keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT },
            options,
          );
          record.keyVersion = response.keyMetadata?.primaryVersion ?? 1;
        };
        break;
      }
      case 'RotateKey':
        record.keyId = this.#keys.aes;
        record.inputDigest = digestOf(Buffer.from(record.keyId));
        run = async () => {
          const response = await this.#client.rotateKey({ keyId: record.keyId }, options);
          record.keyVersion = response.keyMetadata?.primaryVersion ?? 0;
        };
        break;
    }
    record.startMs = wallClockMs();
    try {
      await run();
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      record.code = codeName(failure.code);
      if (failure.reason !== record.code) record.reason = failure.reason;
    }
    record.endMs = wallClockMs();
    // A stall that delayed this continuation is seen by the next lag sample.
    await new Promise((resolve) => setTimeout(resolve, LoopLag.intervalMs * 2));
    const lag = this.#lag.totalBetween(record.startMs, record.endMs + LoopLag.intervalMs * 2);
    if (lag > 0) record.clientLagMs = Math.round(lag);
    this.#onRecord(record);
  }
}

/**
 * Measures how late this process's event loop runs timers: a sample every
 * 20 ms says how much later than asked it fired, which is how long the loop
 * was stalled just before. Kept for the last 30 s.
 */
class LoopLag {
  static readonly intervalMs = 20;
  #samples: { atMs: number; lateMs: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;

  start(): void {
    this.#expected = performance.now() + LoopLag.intervalMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      const late = Math.max(0, now - this.#expected);
      this.#expected = now + LoopLag.intervalMs;
      const atMs = wallClockMs();
      this.#samples.push({ atMs, lateMs: late });
      if (this.#samples.length > 1500) this.#samples.splice(0, this.#samples.length - 1500);
    }, LoopLag.intervalMs);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * How long the loop ran behind between two instants (wall-clock ms): the
   * sum of the stalls that ended then. Stalls are disjoint, so the sum is
   * the time this process could not act on a timer or a reply.
   */
  totalBetween(fromMs: number, toMs: number): number {
    let total = 0;
    for (const sample of this.#samples) if (sample.atMs >= fromMs && sample.atMs <= toMs) total += sample.lateMs;
    return total;
  }
}
