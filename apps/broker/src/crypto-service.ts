import { parseCiphertext } from '@hsm-broker/keys';
import type { KeyRegistry } from '@hsm-broker/keys';
import type { CryptoServiceServer } from '@hsm-broker/proto';
import { KeySpec } from '@hsm-broker/proto';
import {
  checkContext,
  dataKeyLength,
  macAlgorithmOf,
  messageTypeOf,
  requireKeyId,
  signingAlgorithmOf,
  signingAlgorithmToProto,
} from './api-mapping.js';
import { requestOptionsOf } from './call-facts.js';
import type { CallPipeline } from './call-pipeline.js';
import { unary } from './unary-handler.js';

/** CryptoService: every operation resolves the key and runs inside the fleet. */
export function cryptoService(registry: KeyRegistry, pipeline: CallPipeline): CryptoServiceServer {
  const { access } = pipeline;
  return {
    encrypt: unary('Encrypt', pipeline, async (request, context) => {
      const [keyId, encryptionContext] = [requireKeyId(request.keyId), checkContext(request.encryptionContext, 'encryption_context')];
      access.key(context, keyId, encryptionContext);
      const result = await registry.encrypt(keyId, request.plaintext, encryptionContext, requestOptionsOf(context));
      return { ciphertext: result.ciphertext, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    decrypt: unary('Decrypt', pipeline, async (request, context) => {
      const encryptionContext = checkContext(request.encryptionContext, 'encryption_context');
      // The key comes from the ciphertext header, forged or not: authorize it before anything looks it up.
      const header = parseCiphertext(request.ciphertext);
      access.key(context, header.keyId, encryptionContext, header.keyVersion);
      const result = await registry.decrypt(request.ciphertext, encryptionContext, requestOptionsOf(context));
      return { plaintext: result.plaintext, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
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
    sign: unary('Sign', pipeline, async (request, context) => {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const algorithm = signingAlgorithmOf(request.signingAlgorithm);
      const result = await registry.sign(keyId, request.message, messageTypeOf(request.messageType), algorithm, requestOptionsOf(context));
      return { signature: result.signature, keyId: result.keyId, keyVersion: result.keyVersion, signingAlgorithm: request.signingAlgorithm };
    }),
    verify: unary('Verify', pipeline, async (request, context) => {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const algorithm = signingAlgorithmOf(request.signingAlgorithm);
      const result = await registry.verify(keyId, request.keyVersion, request.message, messageTypeOf(request.messageType), request.signature, algorithm, requestOptionsOf(context));
      return { signatureValid: result.valid, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
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
    generateMac: unary('GenerateMac', pipeline, async (request, context) => {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const result = await registry.generateMac(keyId, request.message, macAlgorithmOf(request.macAlgorithm), requestOptionsOf(context));
      return { mac: result.mac, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    verifyMac: unary('VerifyMac', pipeline, async (request, context) => {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const result = await registry.verifyMac(keyId, request.keyVersion, request.message, request.mac, macAlgorithmOf(request.macAlgorithm), requestOptionsOf(context));
      return { macValid: result.valid, keyId: result.keyId, keyVersion: result.keyVersion };
    }),
    generateRandom: unary('GenerateRandom', pipeline, async (request, context) => ({
      random: await registry.generateRandom(request.numBytes, requestOptionsOf(context)),
    })),
  };
}
