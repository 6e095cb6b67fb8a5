import { createHash, randomBytes } from 'node:crypto';
import { BrokerError, Code, quoteInput } from '@hsm-broker/errors';
import type { ExecuteOptions } from '@hsm-broker/fleet';
import { hashLength, isAsymmetric } from '@hsm-broker/pkcs11';
import { additionalData, encodeHeader, ivLength, maxPlaintextBytes, parseCiphertext } from './ciphertext-format.js';
import type { FleetPort } from './fleet-port.js';
import { objectLabel } from './key-model.js';
import type { KeyRecord, KeyVersionRecord, MacAlgorithm, SigningAlgorithm } from './key-model.js';
import { macAlgorithmsFor, macBytes, macHash, maxSignatureBytes, signatureParameters, signingAlgorithmsFor } from './key-policy.js';
import { precondition } from './key-resolver.js';
import type { KeyResolver } from './key-resolver.js';
import type { RequestOptions } from './registry-options.js';
import { verifyInSoftware } from './software-verify.js';

/** Whether a message is given whole or as its digest. */
export type MessageType = 'RAW' | 'DIGEST';

/** Largest RAW message Sign and GenerateMac accept. */
export const maxRawMessageBytes = 4096;


/**
 * The cryptographic operations: each resolves its key id to a usable key
 * version and sends the call to the appliances holding that version.
 * Verify and GetPublicKey run in software on the cached public key.
 */
export class KeyCrypto {
  readonly #fleet: FleetPort;
  readonly #resolver: KeyResolver;

  constructor(fleet: FleetPort, resolver: KeyResolver) {
    this.#fleet = fleet;
    this.#resolver = resolver;
  }

  /**
   * Routing options: only holders of the version, within the deadline (the
   * fleet's operation catalog adds the mechanism the arguments need). Built
   * field by field: this runs on every call.
   */
  #options(version: KeyVersionRecord, options: RequestOptions): ExecuteOptions {
    const routed: ExecuteOptions = { candidates: version.replicas };
    if (options.deadline !== undefined) routed.deadline = options.deadline;
    if (options.onAttempt !== undefined) routed.onAttempt = options.onAttempt;
    return routed;
  }

  /** Seals `plaintext` under the key's primary version (AES-256-GCM); the ciphertext names key and version. */
  async encrypt(keyId: string, plaintext: Buffer, context: Record<string, string>, options: RequestOptions = {}): Promise<{ ciphertext: Buffer; keyId: string; keyVersion: number }> {
    if (plaintext.length > maxPlaintextBytes) {
      throw BrokerError.invalidArgument('plaintext', `is ${String(plaintext.length)} bytes; at most ${String(maxPlaintextBytes)} are allowed`, 'PLAINTEXT_TOO_LARGE');
    }
    const key = this.#resolver.usable(keyId, 'ENCRYPT_DECRYPT');
    const version = this.#resolver.version(key, 0);
    const header = encodeHeader(key.keyId, version.version);
    const iv = randomBytes(ivLength);
    const { result } = await this.#fleet.execute(
      'encrypt',
      { label: objectLabel(key.keyId, version.version), iv, aad: additionalData(header, context), plaintext },
      this.#options(version, options),
    );
    return { ciphertext: Buffer.concat([header, iv, result]), keyId: key.keyId, keyVersion: version.version };
  }

  /** Opens a ciphertext made by {@link encrypt}; a damaged one or a different context fails as INVALID_CIPHERTEXT. */
  async decrypt(ciphertext: Buffer, context: Record<string, string>, options: RequestOptions = {}): Promise<{ plaintext: Buffer; keyId: string; keyVersion: number }> {
    const parsed = parseCiphertext(ciphertext);
    const key = this.#resolver.find(parsed.keyId);
    if (!key) {
      // A flipped bit in the key id lands here as often as a deleted key does.
      throw new BrokerError(Code.INVALID_ARGUMENT, 'ciphertext: names a key that does not exist', {
        reason: 'INVALID_CIPHERTEXT',
        details: { field: 'ciphertext' },
      });
    }
    this.#resolver.usable(key.keyId, 'ENCRYPT_DECRYPT', key);
    const version = key.versions.find((candidate) => candidate.version === parsed.keyVersion);
    if (!version) {
      throw new BrokerError(Code.INVALID_ARGUMENT, 'ciphertext: names a key version that does not exist', {
        reason: 'INVALID_CIPHERTEXT',
        details: { field: 'ciphertext' },
      });
    }
    this.#resolver.checkNotRetired(key, version.version);
    this.#resolver.version(key, version.version);
    try {
      const { result } = await this.#fleet.execute(
        'decrypt',
        { label: objectLabel(key.keyId, version.version), iv: parsed.iv, aad: additionalData(parsed.header, context), ciphertext: parsed.sealed },
        this.#options(version, options),
      );
      return { plaintext: result, keyId: key.keyId, keyVersion: version.version };
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      if (failure.failureClass === 'caller') {
        throw new BrokerError(Code.INVALID_ARGUMENT, 'ciphertext: authentication failed (tampered ciphertext or different encryption_context)', {
          reason: 'INVALID_CIPHERTEXT',
          details: { field: 'ciphertext' },
        });
      }
      throw failure;
    }
  }

  /** Decrypts under one key and encrypts under another; the plaintext never leaves the broker and is wiped. */
  async reEncrypt(
    ciphertext: Buffer,
    sourceContext: Record<string, string>,
    destinationKeyId: string,
    destinationContext: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<{ ciphertext: Buffer; sourceKeyId: string; keyId: string; keyVersion: number }> {
    this.#resolver.usable(destinationKeyId, 'ENCRYPT_DECRYPT');
    const opened = await this.decrypt(ciphertext, sourceContext, options);
    try {
      const sealed = await this.encrypt(destinationKeyId, opened.plaintext, destinationContext, options);
      return { ...sealed, sourceKeyId: opened.keyId };
    } finally {
      opened.plaintext.fill(0);
    }
  }

  /** A random data key from an HSM, in the clear and sealed under the key. */
  async generateDataKey(
    keyId: string,
    length: 16 | 32,
    context: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyVersion: number }> {
    const key = this.#resolver.usable(keyId, 'ENCRYPT_DECRYPT');
    const version = this.#resolver.version(key, 0);
    const { result: plaintext } = await this.#fleet.execute('generateRandom', { length }, this.#options(version, options));
    const sealed = await this.encrypt(keyId, plaintext, context, options);
    return { plaintext, ciphertextBlob: sealed.ciphertext, keyId: sealed.keyId, keyVersion: sealed.keyVersion };
  }

  #digest(message: Buffer, messageType: MessageType, hash: 'sha256' | 'sha384' | 'sha512'): Buffer {
    if (messageType === 'RAW') {
      if (message.length > maxRawMessageBytes) {
        throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; RAW messages are at most ${String(maxRawMessageBytes)} (send a DIGEST instead)`, 'MESSAGE_TOO_LARGE');
      }
      return createHash(hash).update(message).digest();
    }
    if (message.length !== hashLength[hash]) {
      throw BrokerError.invalidArgument('message', `a ${hash.toUpperCase()} DIGEST is ${String(hashLength[hash])} bytes, got ${String(message.length)}`, 'DIGEST_LENGTH_MISMATCH');
    }
    return message;
  }

  /** The checks of {@link #digest} without hashing: OpenSSL hashes a RAW message as it verifies. */
  #checkMessage(message: Buffer, messageType: MessageType, hash: 'sha256' | 'sha384' | 'sha512'): void {
    if (messageType === 'RAW') {
      if (message.length > maxRawMessageBytes) {
        throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; RAW messages are at most ${String(maxRawMessageBytes)} (send a DIGEST instead)`, 'MESSAGE_TOO_LARGE');
      }
      return;
    }
    if (message.length !== hashLength[hash]) {
      throw BrokerError.invalidArgument('message', `a ${hash.toUpperCase()} DIGEST is ${String(hashLength[hash])} bytes, got ${String(message.length)}`, 'DIGEST_LENGTH_MISMATCH');
    }
  }

  #checkSigningAlgorithm(key: KeyRecord, algorithm: SigningAlgorithm): void {
    if (!signingAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw BrokerError.invalidArgument(
        'signing_algorithm',
        `${algorithm} is not valid for key ${key.keyId} (${key.keySpec}); use one of ${signingAlgorithmsFor(key.keySpec).join(', ')}`,
        'INCOMPATIBLE_SIGNING_ALGORITHM',
      );
    }
  }

  /** Signs a message or digest with the key's primary version. */
  async sign(keyId: string, message: Buffer, messageType: MessageType, algorithm: SigningAlgorithm, options: RequestOptions = {}): Promise<{ signature: Buffer; keyId: string; keyVersion: number }> {
    const key = this.#resolver.usable(keyId, 'SIGN_VERIFY');
    this.#checkSigningAlgorithm(key, algorithm);
    const { scheme, hash } = signatureParameters(algorithm);
    const digest = this.#digest(message, messageType, hash);
    const version = this.#resolver.version(key, 0);
    const { result } = await this.#fleet.execute('sign', { label: objectLabel(key.keyId, version.version), scheme, hash, digest }, this.#options(version, options));
    return { signature: result, keyId: key.keyId, keyVersion: version.version };
  }

  /**
   * Verifies in software on the version's recorded public key (node:crypto):
   * no HSM capacity is used and no appliance needs to be up. The refusals
   * (unknown, disabled or pending key, wrong usage or algorithm, retired
   * version, oversized signature) are those of the HSM path.
   */
  verify(
    keyId: string,
    keyVersion: number,
    message: Buffer,
    messageType: MessageType,
    signature: Buffer,
    algorithm: SigningAlgorithm,
    _options: RequestOptions = {},
  ): Promise<{ valid: boolean; keyId: string; keyVersion: number }> {
    try {
      const key = this.#resolver.usable(keyId, 'SIGN_VERIFY', this.#resolver.cached(keyId));
      this.#checkSigningAlgorithm(key, algorithm);
      const { scheme, hash } = signatureParameters(algorithm);
      this.#checkMessage(message, messageType, hash);
      const version = this.#resolver.version(key, keyVersion, 'key_version', false);
      this.#resolver.checkNotRetired(key, version.version);
      const longest = maxSignatureBytes(key.keySpec);
      if (signature.length > longest) {
        throw BrokerError.invalidArgument('signature', `is ${String(signature.length)} bytes; a ${key.keySpec} signature is at most ${String(longest)}`, 'SIGNATURE_TOO_LARGE');
      }
      const verifying = this.#resolver.verifyingKey(key.keyId, version);
      if (!verifying) throw new BrokerError(Code.INTERNAL, `version ${String(version.version)} of ${key.keyId} has no recorded public key`);
      const valid = verifyInSoftware(verifying, scheme, hash, message, messageType === 'DIGEST', signature);
      return Promise.resolve({ valid, keyId: key.keyId, keyVersion: version.version });
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  /** The recorded public key of a version, from the cache; no appliance is asked. */
  getPublicKey(keyId: string, keyVersion: number): { publicKey: Buffer; key: KeyRecord; keyVersion: number; signingAlgorithms: SigningAlgorithm[] } {
    const key = this.#resolver.cached(keyId);
    if (!isAsymmetric(key.keySpec)) throw precondition(`key ${quoteInput(keyId)} (${key.keySpec}) has no public key`, 'NOT_ASYMMETRIC');
    if (key.keyState === 'DISABLED') throw precondition(`key ${quoteInput(keyId)} is disabled`, 'KEY_DISABLED');
    if (key.keyState === 'PENDING_DELETION') throw precondition(`key ${quoteInput(keyId)} is pending deletion`, 'KEY_PENDING_DELETION');
    const version = this.#resolver.version(key, keyVersion, 'key_version', false);
    if (!version.publicKey) throw new BrokerError(Code.INTERNAL, `version ${String(version.version)} of ${keyId} has no recorded public key`);
    return { publicKey: version.publicKey, key, keyVersion: version.version, signingAlgorithms: signingAlgorithmsFor(key.keySpec) };
  }

  #checkMacAlgorithm(key: KeyRecord, algorithm: MacAlgorithm): void {
    if (!macAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw BrokerError.invalidArgument('mac_algorithm', `${algorithm} is not valid for key ${key.keyId} (${key.keySpec})`, 'INCOMPATIBLE_MAC_ALGORITHM');
    }
  }

  /** An HMAC of `message` with the key's primary version. */
  async generateMac(keyId: string, message: Buffer, algorithm: MacAlgorithm, options: RequestOptions = {}): Promise<{ mac: Buffer; keyId: string; keyVersion: number }> {
    if (message.length > maxRawMessageBytes) {
      throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; at most ${String(maxRawMessageBytes)} are allowed`, 'MESSAGE_TOO_LARGE');
    }
    const key = this.#resolver.usable(keyId, 'GENERATE_VERIFY_MAC');
    this.#checkMacAlgorithm(key, algorithm);
    const version = this.#resolver.version(key, 0);
    const { result } = await this.#fleet.execute('generateMac', { label: objectLabel(key.keyId, version.version), hash: macHash(algorithm), message }, this.#options(version, options));
    return { mac: result, keyId: key.keyId, keyVersion: version.version };
  }

  /** Checks an HMAC on the HSM with the given version (0: primary). */
  async verifyMac(
    keyId: string,
    keyVersion: number,
    message: Buffer,
    mac: Buffer,
    algorithm: MacAlgorithm,
    options: RequestOptions = {},
  ): Promise<{ valid: boolean; keyId: string; keyVersion: number }> {
    if (message.length > maxRawMessageBytes) {
      throw BrokerError.invalidArgument('message', `is ${String(message.length)} bytes; at most ${String(maxRawMessageBytes)} are allowed`, 'MESSAGE_TOO_LARGE');
    }
    const key = this.#resolver.usable(keyId, 'GENERATE_VERIFY_MAC');
    this.#checkMacAlgorithm(key, algorithm);
    if (mac.length > macBytes(algorithm)) {
      throw BrokerError.invalidArgument('mac', `is ${String(mac.length)} bytes; an ${algorithm} MAC is ${String(macBytes(algorithm))}`, 'MAC_TOO_LARGE');
    }
    const version = this.#resolver.version(key, keyVersion);
    this.#resolver.checkNotRetired(key, version.version);
    const { result } = await this.#fleet.execute(
      'verifyMac',
      { label: objectLabel(key.keyId, version.version), hash: macHash(algorithm), message, mac },
      this.#options(version, options),
    );
    return { valid: result, keyId: key.keyId, keyVersion: version.version };
  }

  /** Random bytes from any appliance. */
  async generateRandom(length: number, options: RequestOptions = {}): Promise<Buffer> {
    if (!Number.isInteger(length) || length < 1 || length > 1024) {
      throw BrokerError.invalidArgument('num_bytes', `must be 1 to 1024, got ${String(length)}`, 'INVALID_NUM_BYTES');
    }
    const { result } = await this.#fleet.execute('generateRandom', { length }, {
      ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
      ...(options.onAttempt === undefined ? {} : { onAttempt: options.onAttempt }),
    });
    return result;
  }

}
