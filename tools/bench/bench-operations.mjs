// The operations the bench report measures, each defined once: which key it
// needs, the unary request (as h2load sends it), the batch and stream RPCs
// that carry it, and the direct pkcs11js operation that is its ceiling.
import {
  BatchDecryptRequest,
  BatchEncryptRequest,
  BatchSignRequest,
  BatchVerifyRequest,
  DataKeySpec,
  DecryptRequest,
  EncryptRequest,
  GenerateDataKeyRequest,
  MessageType,
  SignRequest,
  SigningAlgorithm,
  VerifyRequest,
} from '@hsm-broker/proto';

/** Bytes of a RAW message to sign. */
export const messageBytes = 32;
/** Bytes of plaintext to encrypt. */
export const plaintextBytes = 1024;
/** Items per batch call. */
export const batchItems = 100;
/** The gRPC path of the echo server's one method (the floor). */
export const echoPath = '/bench.v1.Echo/Echo';

/**
 * @typedef {object} BenchOperation
 * @property {string} id            stable name used in options, JSON and the chart
 * @property {string} title
 * @property {'ecdsa' | 'rsa' | 'aes'} key  which bench key it uses
 * @property {string} path          the unary gRPC path
 * @property {(samples: BenchSamples) => Uint8Array} unaryRequest  the encoded unary request
 * @property {string | null} batchMethod   CryptoServiceClient method of its batch RPC
 * @property {((samples: BenchSamples, items: number) => object) | null} batchRequest
 * @property {boolean} stream       whether SignStream carries it
 * @property {string | null} direct the direct-pkcs11-worker operation (the ceiling), or null
 *   when the operation takes no HSM capacity (software verify) or has no single-call equivalent
 */

/**
 * What the requests are made of: key ids, and a ciphertext and a signature
 * the broker made, so Decrypt and Verify are given real input.
 * @typedef {{ keys: Record<'ecdsa' | 'rsa' | 'aes', { keyId: string, version: number }>, message: Uint8Array, plaintext: Uint8Array, ciphertext: Uint8Array, signature: Uint8Array }} BenchSamples
 */

const signEcdsa = (samples) =>
  SignRequest.fromPartial({ keyId: samples.keys.ecdsa.keyId, message: samples.message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
const signRsa = (samples) =>
  SignRequest.fromPartial({ keyId: samples.keys.rsa.keyId, message: samples.message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256 });
const encrypt = (samples) => EncryptRequest.fromPartial({ keyId: samples.keys.aes.keyId, plaintext: samples.plaintext });
const decrypt = (samples) => DecryptRequest.fromPartial({ ciphertext: samples.ciphertext });
const verify = (samples) =>
  VerifyRequest.fromPartial({
    keyId: samples.keys.ecdsa.keyId,
    message: samples.message,
    messageType: MessageType.RAW,
    signature: samples.signature,
    signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
  });
const repeat = (item, items) => Array.from({ length: items }, () => item);

/** @type {BenchOperation[]} */
export const benchOperations = [
  {
    id: 'sign-ecdsa',
    title: 'Sign ECDSA P-256',
    key: 'ecdsa',
    path: '/hsmbroker.v1.CryptoService/Sign',
    unaryRequest: (samples) => SignRequest.encode(signEcdsa(samples)).finish(),
    batchMethod: 'batchSign',
    batchRequest: (samples, items) => BatchSignRequest.fromPartial({ items: repeat(signEcdsa(samples), items) }),
    stream: true,
    direct: 'sign',
  },
  {
    id: 'sign-rsa',
    title: 'Sign RSA-2048 PKCS#1 v1.5',
    key: 'rsa',
    path: '/hsmbroker.v1.CryptoService/Sign',
    unaryRequest: (samples) => SignRequest.encode(signRsa(samples)).finish(),
    batchMethod: 'batchSign',
    batchRequest: (samples, items) => BatchSignRequest.fromPartial({ items: repeat(signRsa(samples), items) }),
    stream: true,
    direct: 'sign-rsa',
  },
  {
    id: 'encrypt',
    title: 'Encrypt AES-256-GCM 1 KiB',
    key: 'aes',
    path: '/hsmbroker.v1.CryptoService/Encrypt',
    unaryRequest: (samples) => EncryptRequest.encode(encrypt(samples)).finish(),
    batchMethod: 'batchEncrypt',
    batchRequest: (samples, items) => BatchEncryptRequest.fromPartial({ items: repeat(encrypt(samples), items) }),
    stream: false,
    direct: 'encrypt',
  },
  {
    id: 'decrypt',
    title: 'Decrypt AES-256-GCM 1 KiB',
    key: 'aes',
    path: '/hsmbroker.v1.CryptoService/Decrypt',
    unaryRequest: (samples) => DecryptRequest.encode(decrypt(samples)).finish(),
    batchMethod: 'batchDecrypt',
    batchRequest: (samples, items) => BatchDecryptRequest.fromPartial({ items: repeat(decrypt(samples), items) }),
    stream: false,
    direct: 'decrypt',
  },
  {
    id: 'data-key',
    title: 'GenerateDataKey AES-256',
    key: 'aes',
    path: '/hsmbroker.v1.CryptoService/GenerateDataKey',
    unaryRequest: (samples) => GenerateDataKeyRequest.encode(GenerateDataKeyRequest.fromPartial({ keyId: samples.keys.aes.keyId, keySpec: DataKeySpec.AES_256 })).finish(),
    batchMethod: null,
    batchRequest: null,
    stream: false,
    direct: null,
  },
  {
    id: 'verify',
    title: 'Verify ECDSA P-256 (software)',
    key: 'ecdsa',
    path: '/hsmbroker.v1.CryptoService/Verify',
    unaryRequest: (samples) => VerifyRequest.encode(verify(samples)).finish(),
    batchMethod: 'batchVerify',
    batchRequest: (samples, items) => BatchVerifyRequest.fromPartial({ items: repeat(verify(samples), items) }),
    stream: false,
    direct: null,
  },
];

/**
 * A message as one gRPC length-prefixed frame (uncompressed), the body
 * h2load posts.
 * @param {Uint8Array} message
 */
export function grpcFrame(message) {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message.buffer, message.byteOffset, message.length).copy(frame, 5);
  return frame;
}

/**
 * The operation named `id`.
 * @param {string} id
 */
export function operationById(id) {
  const operation = benchOperations.find((candidate) => candidate.id === id);
  if (!operation) throw new Error(`unknown bench operation ${id}`);
  return operation;
}
