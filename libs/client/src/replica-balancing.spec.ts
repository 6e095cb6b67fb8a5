import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { BrokerError, Code, codeName } from '@hsm-broker/errors';
import {
  CryptoServiceService,
  KeyMetadata,
  KeyServiceService,
  type CreateKeyRequest,
  type CreateKeyResponse,
  type GenerateRandomRequest,
  type GenerateRandomResponse,
} from '@hsm-broker/proto';
import { createBrokerClient, type BrokerClient } from './broker-client.js';
import { parseReplicaTarget } from './replica-target.js';

// Two fake replicas on real loopback sockets: one healthy, one that answers
// every call with UNAVAILABLE as a replica on its way down does. The client
// must spread calls over both, send idempotent ones again to the healthy one,
// and never send a non-idempotent one twice.

/** A grpc-js server that answers GenerateRandom and CreateKey, counting each. */
class FakeReplica {
  readonly server = new Server();
  readonly calls = { generateRandom: 0, createKey: 0 };
  address = '';

  constructor(readonly name: string, readonly failing: boolean) {}

  async start(): Promise<this> {
    const unavailable = { code: GrpcStatus.UNAVAILABLE, details: `${this.name} is shutting down` };
    this.server.addService(CryptoServiceService, {
      generateRandom: (
        call: ServerUnaryCall<GenerateRandomRequest, GenerateRandomResponse>,
        callback: sendUnaryData<GenerateRandomResponse>,
      ) => {
        this.calls.generateRandom += 1;
        if (this.failing) callback(unavailable);
        else callback(null, { random: Buffer.from(this.name.padEnd(call.request.numBytes, '.')) });
      },
    });
    this.server.addService(KeyServiceService, {
      createKey: (call: ServerUnaryCall<CreateKeyRequest, CreateKeyResponse>, callback: sendUnaryData<CreateKeyResponse>) => {
        this.calls.createKey += 1;
        if (this.failing) callback(unavailable);
        else callback(null, { keyMetadata: KeyMetadata.fromPartial({ keyId: call.request.keyId }) });
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error === null ? resolve(bound) : reject(error),
      );
    });
    this.address = `127.0.0.1:${String(port)}`;
    return this;
  }
}

describe('client balancing across replicas', () => {
  let healthy: FakeReplica;
  let failing: FakeReplica;
  let client: BrokerClient;

  before(async () => {
    healthy = await new FakeReplica('healthy', false).start();
    failing = await new FakeReplica('failing', true).start();
    // Host names, not literals, so the client's own resolver does the work.
    const named = (address: string): string => address.replace('127.0.0.1', 'localhost');
    client = createBrokerClient({ address: [named(failing.address), named(healthy.address)], deadlineMs: 10_000 });
  });

  after(() => {
    client.close();
    healthy.server.forceShutdown();
    failing.server.forceShutdown();
  });

  it('retries an idempotent call on the other replica: every call succeeds, both replicas were tried', async () => {
    // One call at a time: round_robin then alternates strictly, so a retry
    // always lands on the other replica. (Concurrent calls share the picker,
    // and a replica that stays connected while refusing would be picked
    // again now and then; one that went away is not picked at all.)
    const calls = 20;
    for (let index = 0; index < calls; index++) {
      const answer = await client.generateRandom({ numBytes: 8 });
      assert.equal(Buffer.from(answer.random).toString(), 'healthy.');
    }
    assert.equal(healthy.calls.generateRandom, calls, 'each call ends on the healthy replica exactly once');
    assert.ok(failing.calls.generateRandom > 0, 'round_robin sent some first attempts to the failing replica');
  });

  it('does not send a non-idempotent call again: CreateKey fails with UNAVAILABLE when its replica does', async () => {
    const before = { healthy: healthy.calls.createKey, failing: failing.calls.createKey };
    const outcomes: PromiseSettledResult<CreateKeyResponse>[] = [];
    for (let index = 0; index < 20; index++) {
      outcomes.push(...(await Promise.allSettled([client.createKey({ keyId: `k-${String(index)}` })])));
    }
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
    const served = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    assert.ok(failed.length > 0, 'some CreateKey calls reached the failing replica');
    for (const outcome of failed) {
      const error: unknown = outcome.reason;
      assert.ok(error instanceof BrokerError);
      assert.equal(codeName(error.code), codeName(Code.UNAVAILABLE));
    }
    // Exactly one attempt per call, wherever it went.
    assert.equal(healthy.calls.createKey - before.healthy, served.length);
    assert.equal(failing.calls.createKey - before.failing, failed.length);
  });
});

describe('parseReplicaTarget', () => {
  it('keeps one address or one grpc-js target as it is', () => {
    assert.equal(parseReplicaTarget('127.0.0.1:50051').target, '127.0.0.1:50051');
    assert.equal(parseReplicaTarget('dns:///brokers.internal:50051').target, 'dns:///brokers.internal:50051');
    assert.equal(parseReplicaTarget('ipv4:10.0.0.1:1,10.0.0.2:1').target, 'ipv4:10.0.0.1:1,10.0.0.2:1');
  });

  it('joins several addresses, from commas or an array, into one replica target', () => {
    const expected = 'hsmb-replicas:///broker-1:50051,broker-2:50051,[::1]:50051';
    assert.equal(parseReplicaTarget('broker-1:50051, broker-2:50051,[::1]:50051').target, expected);
    assert.equal(parseReplicaTarget(['broker-1:50051', 'broker-2:50051', '[::1]:50051']).target, expected);
    assert.deepEqual(parseReplicaTarget(['a:1,b:2', 'c:3']).replicas, ['a:1', 'b:2', 'c:3']);
  });

  it('refuses bad entries with INVALID_ARGUMENT naming the address and the entry', () => {
    const refuses = (address: string | string[], pattern: RegExp): void => {
      assert.throws(
        () => parseReplicaTarget(address),
        (error: unknown) =>
          error instanceof BrokerError && error.code === Code.INVALID_ARGUMENT && pattern.test(error.message),
      );
    };
    refuses('', /^address: must be a non-empty/);
    refuses([], /^address: must be a non-empty/);
    refuses('broker-1', /^address: 'broker-1' is not host:port/);
    refuses('a:1,,b:2', /^address: '' is not host:port/);
    refuses('a:0', /^address: 'a:0': port must be 1 to 65535/);
    refuses('a:70000', /^address: 'a:70000': port must be 1 to 65535/);
    refuses('[nothost]:1', /in brackets is not an IPv6 address/);
    refuses(['dns:///brokers:50051', 'a:1'], /names its replicas itself/);
  });
});
