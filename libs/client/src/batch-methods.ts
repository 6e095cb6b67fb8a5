import {
  BatchDecryptRequest,
  BatchEncryptRequest,
  BatchGenerateMacRequest,
  BatchSignRequest,
  BatchVerifyRequest,
  CryptoServiceService,
  type BatchDecryptResult,
  type BatchEncryptResult,
  type BatchGenerateMacResult,
  type BatchSignResult,
  type BatchVerifyResult,
  type DecryptRequest,
  type EncryptRequest,
  type GenerateMacRequest,
  type SignRequest,
  type VerifyRequest,
} from '@hsm-broker/proto';
import type { BrokerCallOptions } from './call-options.js';
import type { ChannelCalls } from './channel-calls.js';
import type { PartialMessage } from './partial-message.js';

/** The batch calls of a {@link BrokerClient}: many items in one call, each answered on its own. */
export interface BatchMethods {
  /**
   * Encrypts up to 1000 items, each under its own key. Results come in the
   * items' order, each with its `response` or its `error` (code, reason);
   * a bad item fails alone, so the promise rejects only for the whole call.
   */
  batchEncrypt(items: PartialMessage<EncryptRequest>[], options?: BrokerCallOptions): Promise<BatchEncryptResult[]>;
  /** Decrypts up to 1000 ciphertexts; per-item results as {@link batchEncrypt}. */
  batchDecrypt(items: PartialMessage<DecryptRequest>[], options?: BrokerCallOptions): Promise<BatchDecryptResult[]>;
  /** Signs up to 1000 messages or digests; per-item results as {@link batchEncrypt}. */
  batchSign(items: PartialMessage<SignRequest>[], options?: BrokerCallOptions): Promise<BatchSignResult[]>;
  /** Verifies up to 1000 signatures; per-item results as {@link batchEncrypt}. */
  batchVerify(items: PartialMessage<VerifyRequest>[], options?: BrokerCallOptions): Promise<BatchVerifyResult[]>;
  /** Computes up to 1000 HMACs; per-item results as {@link batchEncrypt}. */
  batchGenerateMac(items: PartialMessage<GenerateMacRequest>[], options?: BrokerCallOptions): Promise<BatchGenerateMacResult[]>;
}

/** The batch calls over `calls`. */
export function batchMethods({ unary }: ChannelCalls): BatchMethods {
  return {
    batchEncrypt: async (items, callOptions) =>
      (await unary(CryptoServiceService.batchEncrypt, BatchEncryptRequest.fromPartial({ items }), callOptions)).results,
    batchDecrypt: async (items, callOptions) =>
      (await unary(CryptoServiceService.batchDecrypt, BatchDecryptRequest.fromPartial({ items }), callOptions)).results,
    batchSign: async (items, callOptions) =>
      (await unary(CryptoServiceService.batchSign, BatchSignRequest.fromPartial({ items }), callOptions)).results,
    batchVerify: async (items, callOptions) =>
      (await unary(CryptoServiceService.batchVerify, BatchVerifyRequest.fromPartial({ items }), callOptions)).results,
    batchGenerateMac: async (items, callOptions) =>
      (await unary(CryptoServiceService.batchGenerateMac, BatchGenerateMacRequest.fromPartial({ items }), callOptions)).results,
  };
}
