import { BrokerError, Code } from '@hsm-broker/errors';
import { parseCiphertext } from '@hsm-broker/keys';
import type { AliasStore } from '@hsm-broker/keys';
import type { CryptoServiceServer } from '@hsm-broker/proto';
import { DataKeySpec, KeyUsage, SigningAlgorithm, MacAlgorithm } from '@hsm-broker/proto';
import { invoke } from './kms-call.js';
import type { KmsCaller } from './kms-call.js';
import { kmsReasons, kmsRefusal } from './kms-errors.js';
import { keyArn, resolveKeyId } from './kms-key-ids.js';
import type { ArnScope } from './kms-key-ids.js';
import { blob, contextMap, optionalInteger, optionalString } from './kms-request-fields.js';
import type { KmsBody } from './kms-request-fields.js';
import { checkEncryptionAlgorithm, keySpecToKms, macAlgorithmFromKms, messageTypeFromKms, signingAlgorithmFromKms } from './kms-specs.js';

/** One KMS operation: a JSON request in, a JSON answer out (or a BrokerError). */
export type KmsOperation = (body: KmsBody, caller: KmsCaller) => Promise<Record<string, unknown>>;

/** What the operations run against. */
export interface KmsOperationDeps {
  scope: ArnScope;
  aliases: AliasStore;
}

const b64 = (bytes: Buffer): string => bytes.toString('base64');

/** NumberOfBytes or KeySpec of a data key; the broker mints AES-128 and AES-256 keys. */
function dataKeySpecOf(body: KmsBody): DataKeySpec {
  const keySpec = optionalString(body, 'KeySpec');
  const bytes = optionalInteger(body, 'NumberOfBytes', 1, 1024);
  if (keySpec !== undefined && bytes !== undefined) throw BrokerError.invalidArgument('KeySpec', 'give KeySpec or NumberOfBytes, not both', 'INVALID_FIELD');
  if (keySpec === 'AES_256' || bytes === 32) return DataKeySpec.AES_256;
  if (keySpec === 'AES_128' || bytes === 16) return DataKeySpec.AES_128;
  if (bytes !== undefined) throw kmsRefusal(Code.UNIMPLEMENTED, kmsReasons.unsupported, `NumberOfBytes: ${String(bytes)} is not offered; data keys are 16 or 32 bytes`);
  if (keySpec === undefined) throw BrokerError.invalidArgument('KeySpec', 'give KeySpec (AES_256 or AES_128) or NumberOfBytes', 'MISSING_FIELD');
  throw BrokerError.invalidArgument('KeySpec', 'must be AES_256 or AES_128', 'INVALID_ENUM_VALUE');
}

/**
 * The KMS cryptographic operations, each the broker's own CryptoService
 * handler under another wire format. Ciphertext blobs are the broker's
 * self-describing ciphertexts, so a blob from either front door decrypts
 * through the other.
 */
export function kmsCryptoOperations(crypto: CryptoServiceServer, deps: KmsOperationDeps): Record<string, KmsOperation> {
  const { scope, aliases } = deps;
  const keyIdOf = (body: KmsBody, field = 'KeyId'): string => resolveKeyId(scope, aliases, body[field], field);
  /** Decrypt's optional KeyId must name the key the ciphertext names (IncorrectKeyException otherwise). */
  const checkNamedKey = (body: KmsBody, field: string, ciphertext: Buffer): void => {
    if (body[field] === undefined || body[field] === null) return;
    const named = keyIdOf(body, field);
    if (named !== parseCiphertext(ciphertext).keyId) throw kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.incorrectKey, `${field}: the ciphertext was not made with this key`);
  };
  return {
    Encrypt: async (body, caller) => {
      const result = await invoke(crypto.encrypt, () => {
        checkEncryptionAlgorithm(optionalString(body, 'EncryptionAlgorithm'));
        return { keyId: keyIdOf(body), plaintext: blob(body, 'Plaintext'), encryptionContext: contextMap(body, 'EncryptionContext') };
      }, caller);
      return { CiphertextBlob: b64(result.ciphertext), KeyId: keyArn(scope, result.keyId), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
    Decrypt: async (body, caller) => {
      const result = await invoke(crypto.decrypt, () => {
        checkEncryptionAlgorithm(optionalString(body, 'EncryptionAlgorithm'));
        const ciphertext = blob(body, 'CiphertextBlob');
        checkNamedKey(body, 'KeyId', ciphertext);
        return { ciphertext, encryptionContext: contextMap(body, 'EncryptionContext') };
      }, caller);
      const answer = { Plaintext: b64(result.plaintext), KeyId: keyArn(scope, result.keyId), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      result.plaintext.fill(0);
      return answer;
    },
    ReEncrypt: async (body, caller) => {
      const result = await invoke(crypto.reEncrypt, () => {
        checkEncryptionAlgorithm(optionalString(body, 'SourceEncryptionAlgorithm'), 'SourceEncryptionAlgorithm');
        checkEncryptionAlgorithm(optionalString(body, 'DestinationEncryptionAlgorithm'), 'DestinationEncryptionAlgorithm');
        const ciphertext = blob(body, 'CiphertextBlob');
        checkNamedKey(body, 'SourceKeyId', ciphertext);
        return {
          ciphertext,
          sourceEncryptionContext: contextMap(body, 'SourceEncryptionContext'),
          destinationKeyId: keyIdOf(body, 'DestinationKeyId'),
          destinationEncryptionContext: contextMap(body, 'DestinationEncryptionContext'),
        };
      }, caller);
      return {
        CiphertextBlob: b64(result.ciphertext),
        SourceKeyId: keyArn(scope, result.sourceKeyId),
        KeyId: keyArn(scope, result.keyId),
        SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
    GenerateDataKey: async (body, caller) => {
      const result = await invoke(crypto.generateDataKey, () => ({ keyId: keyIdOf(body), keySpec: dataKeySpecOf(body), encryptionContext: contextMap(body, 'EncryptionContext') }), caller);
      const answer = { CiphertextBlob: b64(result.ciphertextBlob), Plaintext: b64(result.plaintext), KeyId: keyArn(scope, result.keyId) };
      result.plaintext.fill(0);
      return answer;
    },
    GenerateDataKeyWithoutPlaintext: async (body, caller) => {
      const result = await invoke(crypto.generateDataKeyWithoutPlaintext, () => ({ keyId: keyIdOf(body), keySpec: dataKeySpecOf(body), encryptionContext: contextMap(body, 'EncryptionContext') }), caller);
      return { CiphertextBlob: b64(result.ciphertextBlob), KeyId: keyArn(scope, result.keyId) };
    },
    GenerateRandom: async (body, caller) => {
      const result = await invoke(crypto.generateRandom, () => {
        if (optionalString(body, 'CustomKeyStoreId') !== undefined) throw kmsRefusal(Code.UNIMPLEMENTED, kmsReasons.unsupported, 'CustomKeyStoreId: custom key stores are not offered');
        return { numBytes: optionalInteger(body, 'NumberOfBytes', 1, 1024) ?? 0 };
      }, caller);
      return { Plaintext: b64(result.random) };
    },
    Sign: async (body, caller) => {
      const result = await invoke(crypto.sign, () => ({
        keyId: keyIdOf(body),
        message: blob(body, 'Message'),
        messageType: messageTypeFromKms(optionalString(body, 'MessageType')),
        signingAlgorithm: signingAlgorithmFromKms(body['SigningAlgorithm']),
      }), caller);
      return { KeyId: keyArn(scope, result.keyId), Signature: b64(result.signature), SigningAlgorithm: SigningAlgorithm[result.signingAlgorithm] };
    },
    Verify: async (body, caller) => {
      const algorithm = body['SigningAlgorithm'];
      const result = await invoke(crypto.verify, () => ({
        keyId: keyIdOf(body),
        keyVersion: 0,
        message: blob(body, 'Message'),
        messageType: messageTypeFromKms(optionalString(body, 'MessageType')),
        signature: blob(body, 'Signature'),
        signingAlgorithm: signingAlgorithmFromKms(algorithm),
      }), caller);
      // KMS answers an invalid signature with an error, never with SignatureValid false.
      if (!result.signatureValid) throw kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.signatureInvalid, 'Signature: the signature is not valid for this message and key');
      return { KeyId: keyArn(scope, result.keyId), SignatureValid: true, SigningAlgorithm: algorithm };
    },
    GetPublicKey: async (body, caller) => {
      const result = await invoke(crypto.getPublicKey, () => ({ keyId: keyIdOf(body), keyVersion: 0 }), caller);
      return {
        KeyId: keyArn(scope, result.keyId),
        PublicKey: b64(result.publicKeyDer),
        KeySpec: keySpecToKms(result.keySpec),
        CustomerMasterKeySpec: keySpecToKms(result.keySpec),
        KeyUsage: KeyUsage[KeyUsage.SIGN_VERIFY],
        SigningAlgorithms: result.signingAlgorithms.map((algorithm) => SigningAlgorithm[algorithm]),
      };
    },
    GenerateMac: async (body, caller) => {
      const result = await invoke(crypto.generateMac, () => ({ keyId: keyIdOf(body), message: blob(body, 'Message'), macAlgorithm: macAlgorithmFromKms(body['MacAlgorithm']) }), caller);
      return { KeyId: keyArn(scope, result.keyId), Mac: b64(result.mac), MacAlgorithm: body['MacAlgorithm'] };
    },
    VerifyMac: async (body, caller) => {
      const result = await invoke(crypto.verifyMac, () => ({
        keyId: keyIdOf(body),
        keyVersion: 0,
        message: blob(body, 'Message'),
        mac: blob(body, 'Mac'),
        macAlgorithm: macAlgorithmFromKms(body['MacAlgorithm']),
      }), caller);
      if (!result.macValid) throw kmsRefusal(Code.INVALID_ARGUMENT, kmsReasons.macInvalid, 'Mac: the MAC is not valid for this message and key');
      return { KeyId: keyArn(scope, result.keyId), MacValid: true, MacAlgorithm: MacAlgorithm[macAlgorithmFromKms(body['MacAlgorithm'])] };
    },
  };
}
