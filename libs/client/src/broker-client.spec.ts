import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
import {
  ApplianceState,
  ApplianceStatus,
  AuditRecord,
  AuditResult,
  AuditServiceService,
  BackupServiceService,
  BackupSummary,
  BreakerState,
  CryptoServiceService,
  FaultKind,
  FleetServiceService,
  KeyMetadata,
  KeyServiceService,
  type BackupProgress,
  type SearchAuditRequest,
  type SearchAuditResponse,
  type TailAuditRequest,
  type TailAuditResponse,
  type ClearFaultsRequest,
  type ClearFaultsResponse,
  type CreateBackupRequest,
  type CreateBackupResponse,
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
  type RestoreBackupRequest,
  type RestoreBackupResponse,
  type ResyncKeysRequest,
  type ResyncKeysResponse,
  type UpdateKeySettingsRequest,
  type UpdateKeySettingsResponse,
} from '@hsm-broker/proto';
import { createBrokerClient, type BrokerClient } from './broker-client.js';

// These tests exercise the client's own transport behaviour (statuses,
// trailing metadata, deadlines, one channel for all services) against a
// grpc-js server that answers with canned responses. Behaviour of the real
// broker is covered by the integration tests.

/** The backup the canned server streams: big enough to need several chunks. */
const cannedBackup = Buffer.from(Array.from({ length: 10_000 }, (_, index) => index % 251));

/** Summary of {@link cannedBackup}, as the broker would send it. */
function cannedSummary(sha256 = createHash('sha256').update(cannedBackup).digest('hex')): BackupSummary {
  return BackupSummary.fromPartial({
    keys: 4,
    keyVersions: 6,
    sha256,
    createdAt: new Date('2026-11-30T05:00:00Z'),
    backupKeyId: 'bk-1',
  });
}

/** The scenario a backup test asks the canned server for, through request metadata. */
function scenario(call: { metadata: Metadata }): string {
  const value = call.metadata.get('x-scenario')[0];
  return typeof value === 'string' ? value : 'ok';
}

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
    let boundAddress: string;

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
        resyncKeys(
          call: ServerUnaryCall<ResyncKeysRequest, ResyncKeysResponse>,
          callback: sendUnaryData<ResyncKeysResponse>,
        ) {
          const all = call.request.applianceId === '';
          callback(null, {
            appliancesChecked: all ? 3 : 1,
            copied: 2,
            lost: 1,
            orphans: ['hsmb:stray:v1'],
            failures: [],
            enrolled: all ? ['hsm-c1'] : [],
          });
        },
      });
      server.addService(BackupServiceService, {
        createBackup(call: ServerWritableStream<CreateBackupRequest, CreateBackupResponse>) {
          connections.add(call.getPeer());
          const which = scenario(call);
          if (which === 'unavailable') {
            call.emit('error', { code: GrpcStatus.UNAVAILABLE, details: 'backup HSM unreachable' });
            return;
          }
          const events: CreateBackupResponse[] = [
            { progress: { stage: 'preparing', done: 0, total: 1 } },
            { progress: { stage: 'wrapping', done: 6, total: 6 } },
          ];
          // Uneven chunks, so that a client that reorders or drops one gets a different digest.
          for (let offset = 0; offset < cannedBackup.length; offset += 3_001) {
            const end = which === 'short' && offset + 3_001 >= cannedBackup.length ? cannedBackup.length - 1 : offset + 3_001;
            events.push({ chunk: cannedBackup.subarray(offset, end) });
          }
          if (which !== 'no-summary') events.push({ summary: cannedSummary() });
          const delayMs = which === 'slow' ? 300 : 0;
          setTimeout(() => {
            for (const event of events) call.write(event);
            call.end();
          }, delayMs);
        },
        restoreBackup(call: ServerWritableStream<RestoreBackupRequest, RestoreBackupResponse>) {
          const which = scenario(call);
          if (which === 'hang') return;
          if (!call.request.backup.equals(cannedBackup)) {
            const trailers = new Metadata();
            trailers.set('hsmb-reason', 'INVALID_BACKUP');
            call.emit('error', {
              code: GrpcStatus.INVALID_ARGUMENT,
              details: 'backup: digest mismatch (the file was altered or damaged); nothing was restored',
              metadata: trailers,
            });
            return;
          }
          call.write({ progress: { stage: 'verifying', done: 1, total: 1 } });
          call.write({ progress: { stage: 'restoring', done: 6, total: 6 } });
          if (which !== 'no-summary') call.write({ summary: cannedSummary() });
          call.end();
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
        updateKeySettings(
          call: ServerUnaryCall<UpdateKeySettingsRequest, UpdateKeySettingsResponse>,
          callback: sendUnaryData<UpdateKeySettingsResponse>,
        ) {
          const { keyId, minDecryptionVersion, rotationPeriodDays } = call.request;
          // Echoes which optional fields arrived; -1 stands for "absent".
          callback(null, {
            keyMetadata: KeyMetadata.fromPartial({
              keyId,
              minDecryptionVersion: minDecryptionVersion ?? 0xffff_ffff,
              rotationPeriodDays: rotationPeriodDays ?? 0xffff_ffff,
            }),
          });
        },
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
      server.addService(AuditServiceService, {
        searchAudit(call: ServerUnaryCall<SearchAuditRequest, SearchAuditResponse>, callback: sendUnaryData<SearchAuditResponse>) {
          // Echoes the filter back in one record, to show what arrived.
          const { filter, limit, startTime } = call.request;
          callback(null, {
            records: [AuditRecord.fromPartial({ seq: limit, identity: filter?.identity ?? '', operation: filter?.operation ?? '', code: filter?.result ?? 0, time: startTime ?? new Date(0) })],
            truncated: true,
          });
        },
        tailAudit(call: ServerWritableStream<TailAuditRequest, TailAuditResponse>) {
          for (let seq = 1; seq <= call.request.backlog; seq++) call.write({ record: AuditRecord.fromPartial({ seq, operation: 'Sign' }) });
          // Then stays open, as a live tail does, until the caller cancels.
        },
      });
      const port = await new Promise<number>((resolve, reject) => {
        server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, boundPort) =>
          error === null ? resolve(boundPort) : reject(error),
        );
      });
      boundAddress = `127.0.0.1:${String(port)}`;
      client = createBrokerClient({ address: boundAddress, deadlineMs: 5_000 });
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

    it('sends only the key settings that were given', async () => {
      const absent = 0xffff_ffff;
      const both = await client.updateKeySettings({ keyId: 'k1', minDecryptionVersion: 2, rotationPeriodDays: 0 });
      assert.equal(both.keyMetadata?.minDecryptionVersion, 2);
      assert.equal(both.keyMetadata?.rotationPeriodDays, 0, 'an explicit 0 is sent, not dropped');
      const one = await client.updateKeySettings({ keyId: 'k1', rotationPeriodDays: 90 });
      assert.equal(one.keyMetadata?.minDecryptionVersion, absent);
      assert.equal(one.keyMetadata?.rotationPeriodDays, 90);
    });

    it('resyncs every appliance, or one', async () => {
      const all = await client.resyncKeys();
      assert.deepEqual(all, {
        appliancesChecked: 3,
        copied: 2,
        lost: 1,
        orphans: ['hsmb:stray:v1'],
        failures: [],
        enrolled: ['hsm-c1'],
      });
      assert.equal((await client.resyncKeys({ applianceId: 'hsm-a1' })).appliancesChecked, 1);
    });

    it('assembles a streamed backup, checks its digest and reports progress in order', async () => {
      const progress: BackupProgress[] = [];
      const { backup, summary } = await client.createBackup({ onProgress: (event) => progress.push(event) });
      assert.deepEqual(backup, cannedBackup);
      assert.deepEqual(summary, cannedSummary());
      assert.deepEqual(
        progress.map((event) => event.stage),
        ['preparing', 'wrapping'],
      );
    });

    it('rejects a backup that does not match its summary, or has none, with DATA_LOSS', async () => {
      await rejectsWithCode(client.createBackup({ metadata: { 'x-scenario': 'short' } }), Code.DATA_LOSS);
      await rejectsWithCode(client.createBackup({ metadata: { 'x-scenario': 'no-summary' } }), Code.DATA_LOSS);
    });

    it('rejects a failed backup stream with its status', async () => {
      await rejectsWithCode(client.createBackup({ metadata: { 'x-scenario': 'unavailable' } }), Code.UNAVAILABLE);
    });

    it('cancels a backup when onProgress throws', async () => {
      await assert.rejects(
        client.createBackup({
          onProgress: () => {
            throw new Error('disk full');
          },
        }),
        /disk full/,
      );
    });

    it('gives backups their own, longer deadline, which a call can still shorten', async () => {
      // The client's ordinary deadline (100 ms) is shorter than this backup (300 ms).
      const hurried = createBrokerClient({ address: boundAddress, deadlineMs: 100 });
      try {
        const { backup } = await hurried.createBackup({ metadata: { 'x-scenario': 'slow' } });
        assert.deepEqual(backup, cannedBackup);
        await rejectsWithCode(
          hurried.createBackup({ metadata: { 'x-scenario': 'slow' }, deadlineMs: 50 }),
          Code.DEADLINE_EXCEEDED,
        );
      } finally {
        hurried.close();
      }
      const shortBackups = createBrokerClient({ address: boundAddress, backupDeadlineMs: 50 });
      try {
        await rejectsWithCode(shortBackups.createBackup({ metadata: { 'x-scenario': 'slow' } }), Code.DEADLINE_EXCEEDED);
      } finally {
        shortBackups.close();
      }
      assert.throws(
        () => createBrokerClient({ address: boundAddress, backupDeadlineMs: -1 }),
        /backupDeadlineMs: must be a positive number of milliseconds, got -1/,
      );
    });

    it('restores a backup and resolves with its summary', async () => {
      const progress: string[] = [];
      const summary = await client.restoreBackup(new Uint8Array(cannedBackup), {
        onProgress: (event) => progress.push(`${event.stage} ${String(event.done)}/${String(event.total)}`),
      });
      assert.deepEqual(summary, cannedSummary());
      assert.deepEqual(progress, ['verifying 1/1', 'restoring 6/6']);
    });

    it('rejects a refused restore with the status code and reason', async () => {
      const damaged = Buffer.from(cannedBackup);
      damaged[5_000] = (damaged[5_000] ?? 0) ^ 0xff;
      await assert.rejects(client.restoreBackup(damaged), (error: unknown) => {
        assert.ok(error instanceof BrokerError);
        assert.equal(Code[error.code], 'INVALID_ARGUMENT');
        assert.equal(error.reason, 'INVALID_BACKUP');
        assert.match(error.message, /nothing was restored/);
        return true;
      });
      await rejectsWithCode(
        client.restoreBackup(cannedBackup, { metadata: { 'x-scenario': 'no-summary' } }),
        Code.INTERNAL,
      );
    });

    it('cancels a restore when its signal aborts', async () => {
      const controller = new AbortController();
      const restore = client.restoreBackup(cannedBackup, { signal: controller.signal, metadata: { 'x-scenario': 'hang' } });
      setTimeout(() => controller.abort(), 50);
      await rejectsWithCode(restore, Code.CANCELLED);
      await rejectsWithCode(client.restoreBackup(cannedBackup, { signal: controller.signal }), Code.CANCELLED);
    });

    it('searches the audit trail with the filters given', async () => {
      const since = new Date('2026-12-02T03:00:00Z');
      const response = await client.searchAudit({ filter: { identity: 'spiffe://corp/a', operation: 'Decrypt', result: AuditResult.DENIED }, limit: 7, startTime: since });
      assert.equal(response.truncated, true);
      assert.deepEqual(
        response.records.map((record) => [record.seq, record.identity, record.operation, record.code, record.time?.toISOString()]),
        [[7, 'spiffe://corp/a', 'Decrypt', AuditResult.DENIED, since.toISOString()]],
      );
    });

    it('tails audit records in order until the signal aborts', async () => {
      const controller = new AbortController();
      const seen: number[] = [];
      const tail = client.tailAudit({ backlog: 3 }, (record) => {
        seen.push(record.seq);
        if (seen.length === 3) controller.abort();
      }, { signal: controller.signal });
      await rejectsWithCode(tail, Code.CANCELLED);
      assert.deepEqual(seen, [1, 2, 3]);
    });

    it('uses one connection for all four services', async () => {
      connections.clear();
      await client.getFleetStatus();
      await client.listKeys();
      await client.encrypt({ keyId: 'k' }).catch(() => undefined);
      await client.createBackup();
      assert.equal(connections.size, 1);
    });
  });
});
