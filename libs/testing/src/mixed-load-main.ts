import { createHash, randomBytes } from 'node:crypto';
import { BrokerError, codeName } from '@hsm-broker/errors';
import { DataKeySpec, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm, createBrokerClient } from '@hsm-broker/client';
import type { LoadCall, LoadKeys, LoadWorkerStart } from './mixed-load.js';

// One client process of the mixed load: a few concurrent loops, each calling
// the broker as a microservice would (encrypt, decrypt, sign, verify, MAC,
// data keys; the first loop of the first process also creates a key every
// second), and reporting every call to the parent in batches.

let running = true;
const pending: LoadCall[] = [];

function flush(): void {
  if (pending.length > 0) process.send?.({ type: 'calls', calls: pending.splice(0) });
}

async function loop(start: LoadWorkerStart, keys: LoadKeys, index: number): Promise<void> {
  const client = createBrokerClient({ address: start.address, deadlineMs: start.deadlineMs });
  let lastCiphertext: Buffer | undefined;
  let lastSignature: { message: Buffer; signature: Buffer } | undefined;
  let step = 0;
  let nextCreate = Date.now() + 1000;
  const loop = `${String(start.processIndex)}/${String(index)}`;
  const record = async (op: string, key: string, body: () => Promise<Partial<LoadCall>>): Promise<void> => {
    const startedAt = Date.now();
    const t0 = performance.now();
    try {
      const extra = await body();
      pending.push({ op, key, ok: true, code: 'OK', ms: performance.now() - t0, at: startedAt, loop, ...extra });
    } catch (error: unknown) {
      const failure = BrokerError.from(error);
      pending.push({ op, key, ok: false, code: codeName(failure.code), ms: performance.now() - t0, at: startedAt, loop, message: failure.message });
    }
  };
  try {
    while (running) {
      if (start.createKeys && index === 0 && Date.now() >= nextCreate) {
        nextCreate += 1000;
        await record('CreateKey', '', async () => {
          const created = await client.createKey({ keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: 'failover suite' });
          return { keyId: created.keyMetadata?.keyId ?? '' };
        });
        continue;
      }
      const plaintext = randomBytes(64);
      switch (step++ % 6) {
        case 0:
          await record('Encrypt', keys.aes, async () => {
            const out = await client.encrypt({ keyId: keys.aes, plaintext });
            lastCiphertext = out.ciphertext;
            return { ciphertext: out.ciphertext.toString('base64'), digest: createHash('sha256').update(plaintext).digest('hex') };
          });
          break;
        case 1:
          if (!lastCiphertext) break;
          await record('Decrypt', keys.aes, async () => {
            await client.decrypt({ ciphertext: lastCiphertext });
            return {};
          });
          break;
        case 2:
          await record('Sign', keys.ec, async () => {
            const out = await client.sign({ keyId: keys.ec, message: plaintext, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
            lastSignature = { message: plaintext, signature: out.signature };
            return { message: plaintext.toString('base64'), signature: out.signature.toString('base64') };
          });
          break;
        case 3:
          if (!lastSignature) break;
          await record('Verify', keys.ec, async () => {
            const out = await client.verify({
              keyId: keys.ec,
              message: lastSignature?.message,
              messageType: MessageType.RAW,
              signature: lastSignature?.signature,
              signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
            });
            if (!out.signatureValid) throw new Error('a signature made by the broker did not verify');
            return {};
          });
          break;
        case 4:
          await record('GenerateMac', keys.hmac, async () => {
            await client.generateMac({ keyId: keys.hmac, message: plaintext, macAlgorithm: MacAlgorithm.HMAC_SHA_256 });
            return {};
          });
          break;
        default:
          await record('GenerateDataKey', keys.aes, async () => {
            const out = await client.generateDataKey({ keyId: keys.aes, keySpec: DataKeySpec.AES_256 });
            return { ciphertext: out.ciphertextBlob.toString('base64'), digest: createHash('sha256').update(out.plaintext).digest('hex') };
          });
      }
      if (start.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, start.pauseMs));
    }
  } finally {
    client.close();
  }
}

process.on('message', (message: LoadWorkerStart | { type: 'stop' }) => {
  if (message.type === 'stop') {
    running = false;
    return;
  }
  const timer = setInterval(flush, 250);
  const loops = Array.from({ length: message.concurrency }, (_unused, index) => loop(message, message.keys, index));
  void Promise.all(loops).finally(() => {
    clearInterval(timer);
    flush();
    process.send?.({ type: 'done' });
    process.disconnect?.();
  });
});
