import { parseCiphertext } from '@hsm-broker/keys';
import type { KeyRegistry } from '@hsm-broker/keys';
import type { CryptoServiceServer } from '@hsm-broker/proto';
import { KeySpec } from '@hsm-broker/proto';
import {
  checkContext,
  dataKeyLength,
  macAlgorithmOf,
  requireKeyId,
  signingAlgorithmToProto,
} from './api-mapping.js';
import { requestOptionsOf } from './call-facts.js';
import type { CallPipeline } from './call-pipeline.js';
import { batch } from './batch-handler.js';
import { itemOperations } from './crypto-operations.js';
import { SignStreamStats, signStream } from './sign-stream.js';
import { unary } from './unary-handler.js';

/**
 * CryptoService: every operation resolves the key and runs inside the fleet
 * (Verify and GetPublicKey run in software on the recorded public key).
 * Batch items and stream requests run exactly as their unary calls.
 */
export function cryptoService(registry: KeyRegistry, pipeline: CallPipeline, streams = new SignStreamStats()): CryptoServiceServer {
  const { access } = pipeline;
  const operations = itemOperations(registry, access);
  return {
    encrypt: unary('Encrypt', pipeline, operations.encrypt),
    decrypt: unary('Decrypt', pipeline, operations.decrypt),
    reEncrypt: unary('ReEncrypt', pipeline, async (request, context) => {
      const sourceContext = checkContext(request.sourceEncryptionContext, 'source_encryption_context');
      const destinationKeyId = requireKeyId(request.destinationKeyId, 'destination_key_id');
      const destinationContext = checkContext(request.destinationEncryptionContext, 'destination_encryption_context');
      const header = parseCiphertext(request.ciphertext);
      access.key(context, header.keyId, sourceContext, header.keyVersion);
      access.key(context, destinationKeyId, destinationContext);
      const result = await registry.reEncrypt(request.ciphertext, sourceContext, destinationKeyId, destinationContext, requestOptionsOf(context));
      return { ciphertext: result.ciphertext, sourceKeyId: result.sourceKeyId, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    generateDataKey: unary('GenerateDataKey', pipeline, async (request, context) => {
      const [keyId, encryptionContext] = [requireKeyId(request.keyId), checkContext(request.encryptionContext, 'encryption_context')];
      access.key(context, keyId, encryptionContext);
      const result = await registry.generateDataKey(keyId, dataKeyLength(request.keySpec), encryptionContext, requestOptionsOf(context));
      return { plaintext: result.plaintext, ciphertextBlob: result.ciphertextBlob, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    generateDataKeyWithoutPlaintext: unary('GenerateDataKeyWithoutPlaintext', pipeline, async (request, context) => {
      const [keyId, encryptionContext] = [requireKeyId(request.keyId), checkContext(request.encryptionContext, 'encryption_context')];
      access.key(context, keyId, encryptionContext);
      const result = await registry.generateDataKey(keyId, dataKeyLength(request.keySpec), encryptionContext, requestOptionsOf(context));
      result.plaintext.fill(0);
      return { ciphertextBlob: result.ciphertextBlob, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    sign: unary('Sign', pipeline, operations.sign),
    verify: unary('Verify', pipeline, operations.verify),
    getPublicKey: unary('GetPublicKey', pipeline, (request, context) => {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const result = registry.getPublicKey(keyId, request.keyVersion);
      const body = result.publicKey.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
      return {
        keyId: result.key.keyId,
        publicKeyDer: result.publicKey,
        publicKeyPem: `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`,
        keySpec: KeySpec[result.key.keySpec],
        signingAlgorithms: result.signingAlgorithms.map(signingAlgorithmToProto),
        keyVersion: result.keyVersion,
      };
    }),
    generateMac: unary('GenerateMac', pipeline, operations.generateMac),
    verifyMac: unary('VerifyMac', pipeline, async (request, context) => {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const result = await registry.verifyMac(keyId, request.keyVersion, request.message, request.mac, macAlgorithmOf(request.macAlgorithm), requestOptionsOf(context));
      return { macValid: result.valid, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    generateRandom: unary('GenerateRandom', pipeline, async (request, context) => ({
      random: await registry.generateRandom(request.numBytes, requestOptionsOf(context)),
    })),
    batchEncrypt: batch('BatchEncrypt', 'Encrypt', pipeline, operations.encrypt),
    batchDecrypt: batch('BatchDecrypt', 'Decrypt', pipeline, operations.decrypt),
    batchSign: batch('BatchSign', 'Sign', pipeline, operations.sign),
    batchVerify: batch('BatchVerify', 'Verify', pipeline, operations.verify),
    batchGenerateMac: batch('BatchGenerateMac', 'GenerateMac', pipeline, operations.generateMac),
    // The guard may hand the stream a RefusedRequest in place of a message; the handler expects it.
    signStream: signStream(pipeline, operations.sign, streams),
  };
}
