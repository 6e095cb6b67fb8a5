import {
  DataKeySpec,
  type DecryptResponse,
  type GenerateDataKeyResponse,
} from '@hsm-broker/proto';
import type { BrokerCallOptions } from './call-options.js';
import { openEnvelope, sealEnvelope } from './envelope-cipher.js';
import { parseEnvelope } from './envelope-format.js';
import type { EncryptionContext } from './encryption-context.js';

/**
 * The two broker calls envelope encryption needs. A {@link BrokerClient}
 * satisfies it; naming only these keeps the helpers independent of the rest
 * of the client.
 */
export interface DataKeyBroker {
  generateDataKey(
    request: { keyId: string; keySpec: DataKeySpec; encryptionContext: Record<string, string> },
    options?: BrokerCallOptions,
  ): Promise<GenerateDataKeyResponse>;
  decrypt(
    request: { ciphertext: Buffer; encryptionContext: Record<string, string> },
    options?: BrokerCallOptions,
  ): Promise<DecryptResponse>;
}

/**
 * Encrypts data of any size under a broker key without sending the data to
 * the broker: asks for a fresh AES-256 data key (GenerateDataKey), encrypts
 * locally with AES-256-GCM, and returns one self-describing envelope holding
 * the wrapped data key, IV, tag and ciphertext. The plaintext data key is
 * zeroed before this returns.
 *
 * `context` is bound both to the wrapped data key (by the broker) and to the
 * envelope (as GCM additional data); {@link decryptEnvelope} needs the same map.
 */
export async function encryptEnvelope(
  broker: DataKeyBroker,
  keyId: string,
  data: Uint8Array,
  context: EncryptionContext = {},
  options?: BrokerCallOptions,
): Promise<Buffer> {
  const dataKey = await broker.generateDataKey(
    { keyId, keySpec: DataKeySpec.AES_256, encryptionContext: { ...context } },
    options,
  );
  try {
    return sealEnvelope(dataKey.plaintext, dataKey.ciphertextBlob, data, context);
  } finally {
    // Best effort: grpc-js may still hold the received frame, but no copy we
    // own outlives this call.
    dataKey.plaintext.fill(0);
  }
}

/**
 * Decrypts an envelope made by {@link encryptEnvelope}: checks its framing,
 * unwraps the data key with the broker (Decrypt, same context), and decrypts
 * locally. A malformed envelope fails with INVALID_ARGUMENT before any broker
 * call; an altered one, or a different context, fails with INVALID_ARGUMENT
 * from the broker or with `ENVELOPE_AUTHENTICATION_FAILED`.
 */
export async function decryptEnvelope(
  broker: DataKeyBroker,
  envelope: Uint8Array,
  context: EncryptionContext = {},
  options?: BrokerCallOptions,
): Promise<Buffer> {
  const parts = parseEnvelope(envelope);
  const dataKey = await broker.decrypt(
    { ciphertext: Buffer.from(parts.wrappedKey), encryptionContext: { ...context } },
    options,
  );
  try {
    return openEnvelope(parts, dataKey.plaintext, context);
  } finally {
    dataKey.plaintext.fill(0);
  }
}
