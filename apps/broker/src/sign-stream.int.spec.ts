import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { credentials, status } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { CryptoServiceClient, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import type { SignStreamRequest, SignStreamResponse } from '@hsm-broker/proto';
import { maxStreamInFlight } from './sign-stream.js';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

type Stream = ClientDuplexStream<SignStreamRequest, SignStreamResponse>;

function request(id: string, keyId: string, message: Buffer): SignStreamRequest {
  return { requestId: id, request: { keyId, message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 } };
}

/** Reads every response until the stream ends; rejects with the stream's error. */
function collect(stream: Stream): Promise<SignStreamResponse[]> {
  const responses: SignStreamResponse[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (response: SignStreamResponse) => responses.push(response));
    stream.on('error', (error: ServiceError) => reject(error));
    stream.on('end', () => resolve(responses));
  });
}

describe('SignStream against a local SoftHSM fleet', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let client: InstanceType<typeof CryptoServiceClient>;
  let spki: Buffer;

  before(async () => {
    t = await startTestBroker();
    client = new CryptoServiceClient(t.broker.address, credentials.createInsecure());
    await t.clients.keys.createKey({ keyId: 's/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await t.clients.keys.createKey({ keyId: 's/rsa', keySpec: KeySpec.RSA_4096, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    spki = (await t.clients.crypto.getPublicKey({ keyId: 's/ec', keyVersion: 0 })).publicKeyDer;
  });

  after(async () => {
    client.close();
    await t.dispose();
  });

  const valid = (message: Buffer, signature: Buffer): boolean => cryptoVerify('sha256', message, createPublicKey({ key: spki, format: 'der', type: 'spki' }), signature);

  it('answers every request once, by id, as soon as it is done: out of order, errors alone', async () => {
    const stream = client.signStream({ deadline: Date.now() + 120_000 });
    const responses = collect(stream);
    // An RSA-4096 signature goes to an appliance; the refusals after it are answered without one, so they overtake it.
    stream.write({ requestId: 'slow', request: { keyId: 's/rsa', message: Buffer.from('slow'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PSS_SHA_512 } });
    stream.write(request('missing-key', 's/none', Buffer.from('x')));
    stream.write({ requestId: 'no-request' });
    stream.write(request('', 's/ec', Buffer.from('x')));
    stream.write(request('long-key', 'k'.repeat(129), Buffer.from('x')));
    const messages = new Map<string, Buffer>();
    for (let index = 0; index < 40; index++) {
      const message = randomBytes(20);
      messages.set(`ok-${String(index)}`, message);
      stream.write(request(`ok-${String(index)}`, 's/ec', message));
    }
    stream.end();
    const answered = await responses;
    assert.equal(answered.length, 45);
    const byId = new Map(answered.map((response) => [response.requestId, response]));
    assert.equal(byId.size, 45, 'each id answered once');
    assert.notEqual(answered[0]?.requestId, 'slow', 'a later request was answered first');
    assert.ok(byId.get('slow')?.response?.signature.length === 512);
    for (const [id, message] of messages) assert.ok(valid(message, byId.get(id)?.response?.signature ?? Buffer.alloc(0)), `${id} verifies with node:crypto`);
    assert.equal(byId.get('missing-key')?.error?.reason, 'KEY_NOT_FOUND');
    assert.equal(byId.get('no-request')?.error?.code, status.INVALID_ARGUMENT);
    assert.equal(byId.get('')?.error?.reason, 'MISSING_REQUEST_ID');
    assert.equal(byId.get('long-key')?.error?.reason, 'KEY_ID_TOO_LONG', 'request limits apply to each request');
  });

  it('never has more than 256 requests of a stream in flight, and loses nothing', async () => {
    // RSA-4096 signatures are slow on SoftHSM, so requests pile up in flight faster than they are answered.
    const rsaKey = createPublicKey({ key: (await t.clients.crypto.getPublicKey({ keyId: 's/rsa', keyVersion: 0 })).publicKeyDer, format: 'der', type: 'spki' });
    const stream = client.signStream({ deadline: Date.now() + 300_000 });
    const responses = collect(stream);
    const total = maxStreamInFlight + 64;
    const messages = new Map<string, Buffer>();
    for (let index = 0; index < total; index++) {
      const message = Buffer.from(`message ${String(index)}`);
      messages.set(String(index), message);
      stream.write({ requestId: String(index), request: { keyId: 's/rsa', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256 } });
    }
    stream.end();
    // Whether the limit is reached depends on how fast this machine reads against how fast it signs, so only the bound is asserted.
    const answered = await responses;
    assert.ok(t.broker.signStreams.peakInFlight <= maxStreamInFlight, `at most ${String(maxStreamInFlight)} in flight, saw ${String(t.broker.signStreams.peakInFlight)}`);
    assert.equal(answered.length, total);
    for (const response of answered) {
      const message = messages.get(response.requestId);
      assert.ok(message, `answer to a request that was sent (${response.requestId})`);
      assert.ok(cryptoVerify('sha256', message, rsaKey, response.response?.signature ?? Buffer.alloc(0)), `request ${response.requestId}: ${response.error?.message ?? ''}`);
    }
    assert.equal(new Set(answered.map((response) => response.requestId)).size, total);
  });

  it('a broken stream loses only its own requests: other streams and calls go on', async () => {
    const other = client.signStream({ deadline: Date.now() + 120_000 });
    const otherResponses = collect(other);
    other.write(request('before', 's/ec', Buffer.from('before')));

    const broken = client.signStream({ deadline: Date.now() + 120_000 });
    const brokenResult = collect(broken).then(
      () => 'ended',
      (error: ServiceError) => error.code,
    );
    for (let index = 0; index < 100; index++) broken.write(request(String(index), 's/ec', Buffer.from(String(index))));
    broken.cancel();
    assert.equal(await brokenResult, status.CANCELLED);

    other.write(request('after', 's/ec', Buffer.from('after')));
    other.end();
    const answered = await otherResponses;
    assert.deepEqual(answered.map((response) => response.requestId).sort(), ['after', 'before']);
    assert.ok(answered.every((response) => valid(Buffer.from(response.requestId), response.response?.signature ?? Buffer.alloc(0))));
    const unary = await t.clients.crypto.sign({ keyId: 's/ec', message: Buffer.from('u'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 });
    assert.ok(valid(Buffer.from('u'), unary.signature));
  });

  it('refuses a stream message larger than any Sign request, ending the stream with INVALID_ARGUMENT', async () => {
    const stream = client.signStream({ deadline: Date.now() + 60_000 });
    const result = collect(stream).then(
      () => undefined,
      (error: ServiceError) => error,
    );
    stream.write(request('huge', 's/ec', Buffer.alloc(64 * 1024)));
    const error = await result;
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.match(error?.details ?? '', /message|request/);
    // The digest of a RAW message is what an appliance signs; unrelated check that DIGEST works on the stream too.
    const digestStream = client.signStream({ deadline: Date.now() + 60_000 });
    const answers = collect(digestStream);
    const digest = createHash('sha256').update('d').digest();
    digestStream.write({ requestId: 'd', request: { keyId: 's/ec', message: digest, messageType: MessageType.DIGEST, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 } });
    digestStream.end();
    const [answer] = await answers;
    assert.ok(valid(Buffer.from('d'), answer?.response?.signature ?? Buffer.alloc(0)));
  });
});
