import { setTimeout as sleep } from 'node:timers/promises';
import type { BrokerClient } from '@hsm-broker/client';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { HistoryReadBack, KeyReadBack } from './history-checker.js';

/**
 * Reads a history's writes back from the broker. The fleet may still be
 * recovering when the check starts, so a failure the broker calls retryable
 * is tried again a few times (one second apart) before it counts: the check
 * is about what is lost, not about what is slow to come back.
 */
export function brokerReadBack(client: BrokerClient, attempts = 5): HistoryReadBack {
  const patiently = async <T>(call: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await call();
      } catch (error: unknown) {
        const failure = BrokerError.from(error);
        if (!failure.retryable || attempt >= attempts) throw failure;
        await sleep(1000);
      }
    }
  };
  return {
    async describeKey(keyId: string): Promise<KeyReadBack | undefined> {
      try {
        const { keyMetadata } = await patiently(() => client.describeKey({ keyId }));
        const versions = new Map<number, number>();
        for (const version of keyMetadata?.versions ?? []) versions.set(version.version, version.replicas.length);
        return { versions };
      } catch (error: unknown) {
        if (BrokerError.from(error).code === Code.NOT_FOUND) return undefined;
        throw error;
      }
    },
    async decrypt(ciphertext: Uint8Array): Promise<Uint8Array> {
      return (await patiently(() => client.decrypt({ ciphertext: Buffer.from(ciphertext) }))).plaintext;
    },
    async publicKeyPem(keyId: string, version: number): Promise<string> {
      return (await patiently(() => client.getPublicKey({ keyId, keyVersion: version }))).publicKeyPem;
    },
  };
}
