// The keys the bench uses, made through the broker's own API, and a check
// that each scenario's call really works before it is timed: a bench of
// fast failures would otherwise look like a fast broker.
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { Metadata, credentials } from '@grpc/grpc-js';
import {
  CreateKeyRequest,
  CryptoServiceClient,
  DecryptRequest,
  EncryptRequest,
  GetPublicKeyRequest,
  KeyServiceClient,
  KeySpec,
  KeyUsage,
  MessageType,
  SignRequest,
  SigningAlgorithm,
} from '@hsm-broker/proto';

// Requests are built with the generated fromPartial, so a field added to the
// API later gets its default instead of failing serialisation.

/**
 * A grpc-js unary call as a promise, with a deadline.
 * @param {any} client
 * @param {string} method
 * @param {object} request
 * @param {number} timeoutMs
 */
function unary(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    client[method](request, new Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
      if (error) reject(new Error(`${method}: ${error.details ?? error.message} (gRPC code ${error.code})`));
      else resolve(response);
    });
  });
}

/**
 * Creates the signing and encryption keys (or those of `operations`) and
 * returns their ids, versions and the appliances holding them. The broker
 * replicates a new key to every enrolled appliance; the baseline needs it on
 * all of them, and the failover run needs it in every zone.
 * @param {string} address
 * @param {string[]} appliances
 * @param {Array<'sign' | 'encrypt' | 'rsa'>} [operations]
 */
export async function createBenchKeys(address, appliances, operations = ['sign', 'encrypt']) {
  const client = new KeyServiceClient(address, credentials.createInsecure());
  try {
    const specs = {
      sign: { keyId: 'bench-ecdsa-p256', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY },
      encrypt: { keyId: 'bench-aes-256', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT },
      rsa: { keyId: 'bench-rsa-2048', keySpec: KeySpec.RSA_2048, keyUsage: KeyUsage.SIGN_VERIFY },
    };
    /** @type {Record<string, { keyId: string, version: number, replicas: string[] }>} */
    const keys = {};
    for (const [operation, spec] of Object.entries(specs).filter(([name]) => operations.includes(/** @type {any} */ (name)))) {
      // Key creation generates on one appliance and replicates: allow it time.
      const response = await unary(client, 'createKey', CreateKeyRequest.fromPartial({ ...spec, description: 'hsm-broker bench' }), 60_000);
      const replicas = response.keyMetadata?.replicas ?? [];
      const missing = appliances.filter((id) => !replicas.includes(id));
      if (missing.length) throw new Error(`key ${spec.keyId} was not replicated to ${missing.join(', ')}; the baseline needs it on every appliance`);
      keys[operation] = { keyId: spec.keyId, version: response.keyMetadata?.primaryVersion ?? 1, replicas };
    }
    return keys;
  } finally {
    client.close();
  }
}

/**
 * One Sign verified with the public key outside the broker.
 * @param {any} client a CryptoServiceClient
 * @param {string} keyId
 */
async function checkSign(client, keyId) {
  const message = randomBytes(32);
  const signed = await unary(
    client,
    'sign',
    SignRequest.fromPartial({ keyId, message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }),
    10_000,
  );
  const publicKey = await unary(client, 'getPublicKey', GetPublicKeyRequest.fromPartial({ keyId }), 10_000);
  const key = createPublicKey({ key: publicKey.publicKeyDer, format: 'der', type: 'spki' });
  if (!verify('sha256', message, key, signed.signature)) throw new Error('the broker returned an ECDSA signature that does not verify');
  return signed.signature.length;
}

/**
 * One Encrypt/Decrypt round trip.
 * @param {any} client a CryptoServiceClient
 * @param {string} keyId
 */
async function checkEncrypt(client, keyId) {
  const plaintext = randomBytes(1024);
  const sealed = await unary(client, 'encrypt', EncryptRequest.fromPartial({ keyId, plaintext }), 10_000);
  const opened = await unary(client, 'decrypt', DecryptRequest.fromPartial({ ciphertext: sealed.ciphertext }), 10_000);
  if (!Buffer.from(opened.plaintext).equals(plaintext)) throw new Error('Decrypt did not return what Encrypt sealed');
  return sealed.ciphertext.length;
}

/**
 * One Sign verified with the public key outside the broker, and one
 * Encrypt/Decrypt round trip (each when its key was made).
 * @param {string} address
 * @param {Record<string, { keyId: string }>} keys
 */
export async function checkBenchCalls(address, keys) {
  const client = new CryptoServiceClient(address, credentials.createInsecure());
  try {
    return {
      ...(keys.encrypt ? { ciphertextBytes: await checkEncrypt(client, keys.encrypt.keyId) } : {}),
      ...(keys.sign ? { signatureBytes: await checkSign(client, keys.sign.keyId) } : {}),
    };
  } finally {
    client.close();
  }
}

/**
 * The input of the report's requests: the three keys, and a ciphertext and
 * an ECDSA signature made by the broker now, so Decrypt and Verify are
 * measured on real input (the signature is checked to verify).
 * @param {string} address
 * @param {Record<string, { keyId: string, version: number }>} keys from createBenchKeys with sign, encrypt and rsa
 * @returns {Promise<import('./bench-operations.mjs').BenchSamples>}
 */
export async function benchSamples(address, keys) {
  const client = new CryptoServiceClient(address, credentials.createInsecure());
  try {
    const message = randomBytes(32);
    const plaintext = randomBytes(1024);
    const sealed = await unary(client, 'encrypt', EncryptRequest.fromPartial({ keyId: keys.encrypt.keyId, plaintext }), 10_000);
    const signed = await unary(
      client,
      'sign',
      SignRequest.fromPartial({ keyId: keys.sign.keyId, message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 }),
      10_000,
    );
    const publicKey = await unary(client, 'getPublicKey', GetPublicKeyRequest.fromPartial({ keyId: keys.sign.keyId }), 10_000);
    if (!verify('sha256', message, createPublicKey({ key: publicKey.publicKeyDer, format: 'der', type: 'spki' }), signed.signature)) {
      throw new Error('the broker returned an ECDSA signature that does not verify');
    }
    return { keys: { ecdsa: keys.sign, rsa: keys.rsa, aes: keys.encrypt }, message, plaintext, ciphertext: sealed.ciphertext, signature: signed.signature };
  } finally {
    client.close();
  }
}
