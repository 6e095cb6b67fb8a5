import { parseCiphertext } from '@hsm-broker/keys';
import type { KeyRegistry } from '@hsm-broker/keys';
import type {
  DecryptRequest,
  DecryptResponse,
  EncryptRequest,
  EncryptResponse,
  GenerateMacRequest,
  GenerateMacResponse,
  SignRequest,
  SignResponse,
  VerifyRequest,
  VerifyResponse,
} from '@hsm-broker/proto';
import { checkContext, macAlgorithmOf, messageTypeOf, requireKeyId, signingAlgorithmOf } from './api-mapping.js';
import { requestOptionsOf } from './call-facts.js';
import type { CallContext, KeyAccess } from './call-pipeline.js';

/** One operation's handler body, shared by its unary RPC and by batch and stream items. */
export type Operation<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

/** The operations a batch or stream item can be, each checked exactly as its unary RPC. */
export interface ItemOperations {
  encrypt: Operation<EncryptRequest, EncryptResponse>;
  decrypt: Operation<DecryptRequest, DecryptResponse>;
  sign: Operation<SignRequest, SignResponse>;
  verify: Operation<VerifyRequest, VerifyResponse>;
  generateMac: Operation<GenerateMacRequest, GenerateMacResponse>;
}

/**
 * The handler bodies of Encrypt, Decrypt, Sign, Verify and GenerateMac:
 * validate, authorize the key (before the registry is asked anything), run.
 */
export function itemOperations(registry: KeyRegistry, access: KeyAccess): ItemOperations {
  return {
    async encrypt(request, context) {
      const [keyId, encryptionContext] = [requireKeyId(request.keyId), checkContext(request.encryptionContext, 'encryption_context')];
      access.key(context, keyId, encryptionContext);
      const result = await registry.encrypt(keyId, request.plaintext, encryptionContext, requestOptionsOf(context));
      return { ciphertext: result.ciphertext, keyId: result.keyId, keyVersion: result.keyVersion };
    },
    async decrypt(request, context) {
      const encryptionContext = checkContext(request.encryptionContext, 'encryption_context');
      // The key comes from the ciphertext header, forged or not: authorize it before anything looks it up.
      const header = parseCiphertext(request.ciphertext);
      access.key(context, header.keyId, encryptionContext, header.keyVersion);
      const result = await registry.decrypt(request.ciphertext, encryptionContext, requestOptionsOf(context));
      return { plaintext: result.plaintext, keyId: result.keyId, keyVersion: result.keyVersion };
    },
    async sign(request, context) {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const algorithm = signingAlgorithmOf(request.signingAlgorithm);
      const result = await registry.sign(keyId, request.message, messageTypeOf(request.messageType), algorithm, requestOptionsOf(context));
      return { signature: result.signature, keyId: result.keyId, keyVersion: result.keyVersion, signingAlgorithm: request.signingAlgorithm };
    },
    async verify(request, context) {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const algorithm = signingAlgorithmOf(request.signingAlgorithm);
      const result = await registry.verify(keyId, request.keyVersion, request.message, messageTypeOf(request.messageType), request.signature, algorithm, requestOptionsOf(context));
      return { signatureValid: result.valid, keyId: result.keyId, keyVersion: result.keyVersion };
    },
    async generateMac(request, context) {
      const keyId = requireKeyId(request.keyId);
      access.key(context, keyId);
      const result = await registry.generateMac(keyId, request.message, macAlgorithmOf(request.macAlgorithm), requestOptionsOf(context));
      return { mac: result.mac, keyId: result.keyId, keyVersion: result.keyVersion };
    },
  };
}
