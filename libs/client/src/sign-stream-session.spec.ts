import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Server, ServerCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
import { CryptoServiceService } from '@hsm-broker/proto';
import type { SignStreamRequest, SignStreamResponse } from '@hsm-broker/proto';
import { createBrokerClient, type BrokerClient } from './broker-client.js';

// A canned SignStream server: it holds every request until the caller has
// sent `batch` of them, then answers them in reverse order; a key id `bad`
// is answered with an item error, `break` cancels the stream.

describe('SignStreamSession against a canned server', () => {
  let server: Server;
  let client: BrokerClient;
  const batch = 5;

  before(async () => {
    server = new Server();
    const signStream = (call: ServerDuplexStream<SignStreamRequest, SignStreamResponse>): void => {
      const held: SignStreamRequest[] = [];
      call.on('data', (request: SignStreamRequest) => {
        if (request.request?.keyId === 'break') {
          call.emit('error', { code: GrpcStatus.UNAVAILABLE, details: 'broken on purpose' });
          return;
        }
        held.push(request);
        if (held.length < batch) return;
        for (const answered of held.reverse()) {
          if (answered.request?.keyId === 'bad') {
            call.write({ requestId: answered.requestId, error: { code: GrpcStatus.NOT_FOUND, reason: 'KEY_NOT_FOUND', message: 'key_id: no such key' } });
          } else {
            call.write({ requestId: answered.requestId, response: { signature: Buffer.from(answered.request?.message ?? Buffer.alloc(0)), keyId: answered.request?.keyId ?? '', keyVersion: 1, signingAlgorithm: 0 } });
          }
        }
        held.length = 0;
      });
      call.on('end', () => call.end());
    };
    server.addService(CryptoServiceService, { signStream });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    client = createBrokerClient({ address: `127.0.0.1:${String(port)}` });
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  it('matches answers that come in reverse order to their requests, and fails a bad item alone', async () => {
    const session = client.openSignStream();
    const messages = ['a', 'b', 'c', 'd', 'e'];
    const results = messages.map((message, index) => session.sign({ keyId: index === 2 ? 'bad' : 'k', message: Buffer.from(message) }).then(
      (response) => Buffer.from(response.signature).toString(),
      (error: unknown) => error,
    ));
    assert.equal(session.inFlight, 5);
    const settled = await Promise.all(results);
    assert.deepEqual([settled[0], settled[1], settled[3], settled[4]], ['a', 'b', 'd', 'e']);
    assert.ok(settled[2] instanceof BrokerError);
    assert.equal(settled[2].code, Code.NOT_FOUND);
    assert.equal(settled[2].reason, 'KEY_NOT_FOUND');
    await session.end();
    assert.equal(session.inFlight, 0);
  });

  it('rejects every request in flight when the stream breaks', async () => {
    const session = client.openSignStream();
    const waiting = [session.sign({ keyId: 'k', message: Buffer.from('1') }), session.sign({ keyId: 'k', message: Buffer.from('2') })];
    const breaking = session.sign({ keyId: 'break', message: Buffer.from('x') });
    for (const pending of [...waiting, breaking]) {
      await assert.rejects(pending, (error: unknown) => error instanceof BrokerError && error.code === Code.UNAVAILABLE);
    }
    await assert.rejects(session.end());
    await assert.rejects(session.sign({ keyId: 'k', message: Buffer.from('late') }), BrokerError);
  });
});
