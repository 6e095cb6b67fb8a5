import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
import {
  ApplianceState,
  ApplianceStatus,
  BreakerState,
  CryptoServiceService,
  FaultKind,
  FleetServiceService,
  KeyMetadata,
  KeyServiceService,
  type ClearFaultsRequest,
  type ClearFaultsResponse,
  type DrainApplianceRequest,
  type DrainApplianceResponse,
  type EncryptRequest,
  type EncryptResponse,
  type FenceZoneRequest,
  type FenceZoneResponse,
  type GenerateRandomRequest,
  type GenerateRandomResponse,
  type GetFleetStatusRequest,
  type GetFleetStatusResponse,
  type InjectFaultRequest,
  type InjectFaultResponse,
  type ListKeysRequest,
  type ListKeysResponse,
} from '@hsm-broker/proto';
import { createBrokerClient, type BrokerClient } from './broker-client.js';

// These tests exercise the client's own transport behaviour (statuses,
// trailing metadata, deadlines, one channel for all services) against a
// grpc-js server that answers with canned responses. Behaviour of the real
// broker is covered by the integration tests.

function rejectsWithCode(promise: Promise<unknown>, code: Code): Promise<void> {
  return assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BrokerError, `expected BrokerError, got ${String(error)}`);
    assert.equal(Code[error.code], Code[code]);
    return true;
  });
}

describe('createBrokerClient', () => {
  it('rejects an empty address and a bad deadline at creation', () => {
    assert.throws(() => createBrokerClient({ address: ' ' }), /address: must be a non-empty host:port/);
    assert.throws(
      () => createBrokerClient({ address: '127.0.0.1:1', deadlineMs: 0 }),
      /deadlineMs: must be a positive number of milliseconds, got 0/,
    );
  });

  it('fails a call to an address nobody listens on with UNAVAILABLE', async () => {
    const client = createBrokerClient({ address: '127.0.0.1:1', deadlineMs: 5_000 });
    try {
      await rejectsWithCode(client.getFleetStatus(), Code.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  describe('against a canned server', () => {
    const server = new Server();
    const connections = new Set<string>();
    let client: BrokerClient;

    before(async () => {
      server.addService(FleetServiceService, {
        getFleetStatus(
          call: ServerUnaryCall<GetFleetStatusRequest, GetFleetStatusResponse>,
          callback: sendUnaryData<GetFleetStatusResponse>,
        ) {
          connections.add(call.getPeer());
          const requestId = call.metadata.get('x-request-id')[0];
          callback(null, {
            localZone: typeof requestId === 'string' ? requestId : 'no-request-id',
            zones: [{ name: 'zone-a', applianceCount: 1, healthyCount: 1 }],
            appliances: [
              ApplianceStatus.fromPartial({
                id: 'hsm-a1',
                zone: 'zone-a',
                state: ApplianceState.HEALTHY,
                requestsTotal: 10,
                latencyEwmaMs: 1.5,
                keysPresent: 3,
                workers: 1,
                breakerState: BreakerState.CLOSED,
              }),
            ],
            fencedZones: [],
          });
        },
        drainAppliance(
          call: ServerUnaryCall<DrainApplianceRequest, DrainApplianceResponse>,
          callback: sendUnaryData<DrainApplianceResponse>,
        ) {
          callback(null, {
            appliance: ApplianceStatus.fromPartial({
              id: call.request.applianceId,
              state: ApplianceState.DRAINED,
              drained: true,
            }),
          });
        },
        fenceZone(call: ServerUnaryCall<FenceZoneRequest, FenceZoneResponse>, callback: sendUnaryData<FenceZoneResponse>) {
          callback(null, { zone: { name: call.request.zone, applianceCount: 2, healthyCount: 0 } });
        },
        injectFault(
          call: ServerUnaryCall<InjectFaultRequest, InjectFaultResponse>,
          callback: sendUnaryData<InjectFaultResponse>,
        ) {
          const { applianceId, kind, probability, latencyMs, durationMs } = call.request;
          callback(null, {
            appliance: ApplianceStatus.fromPartial({
              id: applianceId,
              faults: [
                {
                  kind,
                  probability,
                  latencyMs,
                  expiresAt: new Date(Date.parse('2030-01-01T00:00:00Z') + durationMs),
                },
              ],
            }),
          });
        },
        clearFaults(
          call: ServerUnaryCall<ClearFaultsRequest, ClearFaultsResponse>,
          callback: sendUnaryData<ClearFaultsResponse>,
        ) {
          // Answers 3 for "all appliances" and 1 for one, so the test sees which was asked.
          callback(null, { cleared: call.request.applianceId === '' ? 3 : 1 });
        },
      });
      server.addService(CryptoServiceService, {
        encrypt(
          call: ServerUnaryCall<EncryptRequest, EncryptResponse>,
          callback: sendUnaryData<EncryptResponse>,
        ) {
          connections.add(call.getPeer());
          const trailers = new Metadata();
          trailers.set('hsmb-reason', 'KEY_DISABLED');
          trailers.set('hsmb-retryable', 'false');
          callback({
            code: GrpcStatus.FAILED_PRECONDITION,
            details: `key '${call.request.keyId}' is disabled`,
            metadata: trailers,
          });
        },
        generateRandom(
          call: ServerUnaryCall<GenerateRandomRequest, GenerateRandomResponse>,
          callback: sendUnaryData<GenerateRandomResponse>,
        ) {
          // Slower than the deadline the test gives, so the client gives up.
          const timer = setTimeout(() => callback(null, { random: Buffer.alloc(call.request.numBytes) }), 2_000);
          call.on('cancelled', () => clearTimeout(timer));
        },
      });
      server.addService(KeyServiceService, {
        listKeys(
          call: ServerUnaryCall<ListKeysRequest, ListKeysResponse>,
          callback: sendUnaryData<ListKeysResponse>,
        ) {
          connections.add(call.getPeer());
          const page = call.request.pageToken === '' ? 0 : Number(call.request.pageToken);
          callback(null, {
            keys: [KeyMetadata.fromPartial({ keyId: `key-${String(page)}` })],
            nextPageToken: page < 2 ? String(page + 1) : '',
          });
        },
      });
      const port = await new Promise<number>((resolve, reject) => {
        server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, boundPort) =>
          error === null ? resolve(boundPort) : reject(error),
        );
      });
      client = createBrokerClient({ address: `127.0.0.1:${String(port)}`, deadlineMs: 5_000 });
    });

    after(() => {
      client.close();
      server.forceShutdown();
    });

    it('resolves with the decoded response', async () => {
      const status = await client.getFleetStatus();
      assert.equal(status.appliances[0]?.id, 'hsm-a1');
      assert.equal(status.appliances[0]?.state, ApplianceState.HEALTHY);
    });

    it('sends the fleet operator calls and decodes their answers', async () => {
      const drained = await client.drainAppliance({ applianceId: 'hsm-b1' });
      assert.equal(drained.appliance?.id, 'hsm-b1');
      assert.equal(drained.appliance?.state, ApplianceState.DRAINED);
      assert.equal(drained.appliance?.drained, true);

      const fenced = await client.fenceZone({ zone: 'zone-b' });
      assert.deepEqual(fenced.zone, { name: 'zone-b', applianceCount: 2, healthyCount: 0 });

      const injected = await client.injectFault({
        applianceId: 'hsm-a1',
        kind: FaultKind.LATENCY,
        probability: 0.25,
        latencyMs: 300,
        durationMs: 1_500,
      });
      assert.deepEqual(injected.appliance?.faults, [
        { kind: FaultKind.LATENCY, probability: 0.25, latencyMs: 300, expiresAt: new Date('2030-01-01T00:00:01.500Z') },
      ]);

      assert.equal((await client.clearFaults()).cleared, 3);
      assert.equal((await client.clearFaults({ applianceId: 'hsm-a1' })).cleared, 1);
    });

    it('sends per-call metadata', async () => {
      const status = await client.getFleetStatus({}, { metadata: { 'x-request-id': 'req-42' } });
      assert.equal(status.localZone, 'req-42');
    });

    it('rejects with the status code, message, reason and retry verdict', async () => {
      await assert.rejects(client.encrypt({ keyId: 'k1', plaintext: Buffer.from('x') }), (error: unknown) => {
        assert.ok(error instanceof BrokerError);
        assert.equal(error.code, Code.FAILED_PRECONDITION);
        assert.equal(error.message, "key 'k1' is disabled");
        assert.equal(error.reason, 'KEY_DISABLED');
        assert.equal(error.retryable, false);
        return true;
      });
    });

    it('rejects an RPC the server does not implement with UNIMPLEMENTED', async () => {
      await rejectsWithCode(client.describeKey({ keyId: 'k1' }), Code.UNIMPLEMENTED);
    });

    it('honours a per-call deadline', async () => {
      const started = Date.now();
      await rejectsWithCode(client.generateRandom({ numBytes: 4 }, { deadlineMs: 100 }), Code.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - started < 1_500);
    });

    it('cancels a call when its signal aborts', async () => {
      const controller = new AbortController();
      const call = client.generateRandom({ numBytes: 4 }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await rejectsWithCode(call, Code.CANCELLED);
      await rejectsWithCode(client.generateRandom({ numBytes: 4 }, { signal: controller.signal }), Code.CANCELLED);
    });

    it('rejects an invalid per-call deadline without calling', async () => {
      await rejectsWithCode(client.getFleetStatus({}, { deadlineMs: -1 }), Code.INVALID_ARGUMENT);
    });

    it('walks every page of ListKeys', async () => {
      const ids: string[] = [];
      for await (const key of client.listAllKeys({ pageSize: 1 })) ids.push(key.keyId);
      assert.deepEqual(ids, ['key-0', 'key-1', 'key-2']);
    });

    it('uses one connection for all three services', async () => {
      connections.clear();
      await client.getFleetStatus();
      await client.listKeys();
      await client.encrypt({ keyId: 'k' }).catch(() => undefined);
      assert.equal(connections.size, 1);
    });
  });
});
