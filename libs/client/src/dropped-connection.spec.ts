import assert from 'node:assert/strict';
import { createServer } from 'node:http2';
import type { Http2Server, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { BrokerError, Code, reasonTrailer } from '@hsm-broker/errors';
import { CreateKeyResponse, EncryptResponse, KeyMetadata, KeySpec, KeyUsage } from '@hsm-broker/proto';
import { createBrokerClient } from './broker-client.js';
import type { BrokerClient } from './broker-client.js';

// A replica that dies mid-call: a bare HTTP/2 server speaking just enough
// gRPC answers each stream as the test says, or sends the response headers
// and then resets the whole connection. grpc-js does not retry a call once it
// has seen response headers, so only the client's own transport retry can
// save an idempotent call here, and it must never resend a CreateKey.

type Answer = 'reset-after-headers' | 'ok' | 'broker-refusal' | 'silence';

function grpcMessage(payload: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt32BE(payload.length, 1);
  Buffer.from(payload).copy(frame, 5);
  return frame;
}

describe('a connection dropped under a call', () => {
  let server: Http2Server;
  let address: string;
  let client: BrokerClient;
  let script: Answer[] = [];
  const streams: string[] = [];
  const sockets = new Set<Socket>();

  const answer = (stream: ServerHttp2Stream, path: string): void => {
    const next = script.shift() ?? 'ok';
    if (next === 'reset-after-headers') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // Let the headers reach the client, then the whole connection goes,
      // reset as by a process that died.
      setTimeout(() => {
        for (const socket of sockets) socket.resetAndDestroy();
        sockets.clear();
      }, 20);
      return;
    }
    if (next === 'silence') return;
    if (next === 'broker-refusal') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'no appliance can serve', [reasonTrailer]: 'NO_HEALTHY_APPLIANCE', 'grpc-retry-pushback-ms': '-1' }, { endStream: true });
      return;
    }
    const payload = path.endsWith('/CreateKey')
      ? CreateKeyResponse.encode({ keyMetadata: KeyMetadata.fromPartial({ keyId: 'k' }) }).finish()
      : EncryptResponse.encode(EncryptResponse.fromPartial({ keyId: 'k', ciphertext: Buffer.from('sealed') })).finish();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(grpcMessage(payload));
  };

  before(async () => {
    server = createServer();
    server.on('connection', (socket: Socket) => sockets.add(socket));
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      streams.push(path);
      stream.on('error', () => undefined);
      // Answer once the request has arrived whole, as a server would.
      stream.on('data', () => undefined);
      stream.on('end', () => answer(stream, path));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${String((server.address() as AddressInfo).port)}`;
    client = createBrokerClient({ address, deadlineMs: 5000 });
  });

  after(async () => {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    script = [];
    streams.length = 0;
  });

  it('sends an idempotent call again and answers it', async () => {
    script = ['reset-after-headers', 'ok'];
    const response = await client.encrypt({ keyId: 'k', plaintext: Buffer.from('hello') });
    assert.equal(Buffer.from(response.ciphertext).toString(), 'sealed');
    assert.deepEqual(streams, ['/hsmbroker.v1.CryptoService/Encrypt', '/hsmbroker.v1.CryptoService/Encrypt']);
  });

  it('never sends a CreateKey twice', async () => {
    script = ['reset-after-headers', 'ok'];
    await assert.rejects(
      client.createKey({ keyId: 'k', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT }),
      (error: unknown) => error instanceof BrokerError && error.code === Code.UNAVAILABLE,
    );
    assert.deepEqual(streams, ['/hsmbroker.v1.KeyService/CreateKey']);
  });

  it('does not resend a refusal the broker itself sent', async () => {
    script = ['broker-refusal', 'ok'];
    await assert.rejects(
      client.encrypt({ keyId: 'k', plaintext: Buffer.from('hello') }),
      (error: unknown) => error instanceof BrokerError && error.code === Code.UNAVAILABLE && error.reason === 'NO_HEALTHY_APPLIANCE',
    );
    assert.deepEqual(streams, ['/hsmbroker.v1.CryptoService/Encrypt']);
  });

  it('gives up after two resends', async () => {
    script = ['reset-after-headers', 'reset-after-headers', 'reset-after-headers', 'ok'];
    await assert.rejects(
      client.encrypt({ keyId: 'k', plaintext: Buffer.from('hello') }),
      (error: unknown) => error instanceof BrokerError && error.code === Code.UNAVAILABLE,
    );
    assert.equal(streams.length, 3);
  });

  it('reports the dropped connection, not its own deadline, when a resend only runs out the time', async () => {
    script = ['reset-after-headers', 'silence'];
    await assert.rejects(
      client.encrypt({ keyId: 'k', plaintext: Buffer.from('hello') }, { deadlineMs: 600 }),
      (error: unknown) => error instanceof BrokerError && error.code === Code.UNAVAILABLE,
    );
    assert.equal(streams.length, 2);
  });
});
