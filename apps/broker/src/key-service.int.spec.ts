import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { objectLabel } from '@hsm-broker/keys';
import { KeySpec, KeyState, KeyUsage } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

const day = 24 * 60 * 60 * 1000;

describe('KeyService against a local SoftHSM fleet', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let now = Date.parse('2026-01-01T00:00:00Z');

  before(async () => {
    t = await startTestBroker({ clock: () => now });
  });

  after(async () => {
    await t.dispose();
  });

  const validPairs: [KeySpec, KeyUsage][] = [
    [KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT],
    [KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC],
    [KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY],
    [KeySpec.ECC_NIST_P384, KeyUsage.SIGN_VERIFY],
    [KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY],
  ];

  it('creates keys of each spec on every appliance and describes them', async () => {
    for (const [spec, usage] of validPairs) {
      const keyId = `lifecycle/${KeySpec[spec]}`;
      const created = await t.clients.keys.createKey({ keyId, keySpec: spec, keyUsage: usage, description: 'd', labels: { team: 'payments' }, rotationPeriodDays: 0 });
      const metadata = created.keyMetadata;
      assert.ok(metadata);
      assert.equal(metadata.keyId, keyId);
      assert.equal(metadata.keySpec, spec);
      assert.equal(metadata.keyUsage, usage);
      assert.equal(metadata.keyState, KeyState.ENABLED);
      assert.equal(metadata.primaryVersion, 1);
      assert.deepEqual(metadata.labels, { team: 'payments' });
      assert.deepEqual([...metadata.replicas].sort(), ['hsm-a1', 'hsm-b1', 'hsm-c1']);
      assert.equal(metadata.createdAt?.getTime(), now);
      // Each appliance really holds the objects, labelled with key id and version.
      for (const appliance of metadata.replicas) {
        assert.equal(await t.broker.fleet.executeOn(appliance, 'hasKey', { label: objectLabel(keyId, 1) }), true, appliance);
      }
      const described = await t.clients.keys.describeKey({ keyId });
      assert.deepEqual(described.keyMetadata, metadata);
    }
  });

  it('generates an id when none is given', async () => {
    const created = await t.clients.keys.createKey({ keyId: '', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 });
    assert.match(created.keyMetadata?.keyId ?? '', /^[0-9a-f-]{36}$/);
  });

  it('refuses incompatible spec/usage, duplicate ids, bad ids and bad enums with the documented status', async () => {
    const incompatible = await statusOf(t.clients.keys.createKey({ keyId: 'x/1', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 }));
    assert.equal(incompatible.code, status.INVALID_ARGUMENT);
    assert.match(incompatible.message, /key_usage/);
    const duplicate = await statusOf(t.clients.keys.createKey({ keyId: 'lifecycle/AES_256', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 }));
    assert.equal(duplicate.code, status.ALREADY_EXISTS);
    for (const keyId of ['has space', 'x'.repeat(129), 'semi;colon', 'ünïcode']) {
      const bad = await statusOf(t.clients.keys.createKey({ keyId, keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 }));
      assert.equal(bad.code, status.INVALID_ARGUMENT, keyId);
      assert.match(bad.message, /key_id/);
    }
    assert.equal((await t.clients.keys.createKey({ keyId: 'a'.repeat(128), keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 })).keyMetadata?.keyId.length, 128);
    const noSpec = await statusOf(t.clients.keys.createKey({ keyId: 'x/2', keySpec: KeySpec.UNSPECIFIED, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 }));
    assert.equal(noSpec.code, status.INVALID_ARGUMENT);
    assert.match(noSpec.message, /key_spec/);
    const badUsage = await statusOf(t.clients.keys.createKey({ keyId: 'x/3', keySpec: KeySpec.AES_256, keyUsage: 17 as KeyUsage, description: '', labels: {}, rotationPeriodDays: 0 }));
    assert.equal(badUsage.code, status.INVALID_ARGUMENT);
    assert.match(badUsage.message, /key_usage/);
    const unknown = await statusOf(t.clients.keys.describeKey({ keyId: 'nope' }));
    assert.equal(unknown.code, status.NOT_FOUND);
    // Nothing half-made is left behind by refused requests.
    assert.equal((await statusOf(t.clients.keys.describeKey({ keyId: 'x/1' }))).code, status.NOT_FOUND);
  });

  it('lists keys in pages', async () => {
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await t.clients.keys.listKeys({ pageSize: 2, pageToken });
      assert.ok(page.keys.length <= 2);
      seen.push(...page.keys.map((key) => key.keyId));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    const all = await t.clients.keys.listKeys({ pageSize: 0, pageToken: '' });
    assert.deepEqual(seen, all.keys.map((key) => key.keyId));
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(seen.includes('lifecycle/RSA_2048'));
    assert.equal((await statusOf(t.clients.keys.listKeys({ pageSize: 1001, pageToken: '' }))).code, status.INVALID_ARGUMENT);
    assert.equal((await statusOf(t.clients.keys.listKeys({ pageSize: 1, pageToken: '!!' }))).code, status.INVALID_ARGUMENT);
  });

  it('disables, enables and rotates', async () => {
    const keyId = 'lifecycle/ECC_NIST_P256';
    assert.equal((await t.clients.keys.disableKey({ keyId })).keyMetadata?.keyState, KeyState.DISABLED);
    assert.equal((await t.clients.keys.enableKey({ keyId })).keyMetadata?.keyState, KeyState.ENABLED);
    now += 1000;
    const rotated = await t.clients.keys.rotateKey({ keyId });
    assert.equal(rotated.keyMetadata?.primaryVersion, 2);
    assert.deepEqual(rotated.keyMetadata?.versions.map((v) => [v.version, v.createdAt?.getTime()]), [[1, now - 1000], [2, now]]);
  });

  it('schedules deletion within 7..30 days, blocks use, cancels to DISABLED', async () => {
    const keyId = 'lifecycle/HMAC_256';
    for (const days of [6, 31, -1]) {
      const refused = await statusOf(t.clients.keys.scheduleKeyDeletion({ keyId, pendingWindowDays: days }));
      assert.equal(refused.code, status.INVALID_ARGUMENT);
      assert.match(refused.message, /pending_window_days/);
    }
    const scheduled = await t.clients.keys.scheduleKeyDeletion({ keyId, pendingWindowDays: 0 });
    assert.equal(scheduled.keyMetadata?.keyState, KeyState.PENDING_DELETION);
    assert.equal(scheduled.keyMetadata?.deletionTime?.getTime(), now + 30 * day);
    const blocked = await statusOf(t.clients.crypto.generateMac({ keyId, message: Buffer.from('x'), macAlgorithm: 1 }));
    assert.equal(blocked.code, status.FAILED_PRECONDITION);
    assert.match(blocked.message, /pending deletion/);
    assert.equal((await statusOf(t.clients.keys.enableKey({ keyId }))).code, status.FAILED_PRECONDITION);
    const cancelled = await t.clients.keys.cancelKeyDeletion({ keyId });
    assert.equal(cancelled.keyMetadata?.keyState, KeyState.DISABLED);
    assert.equal(cancelled.keyMetadata?.deletionTime, undefined);
    assert.equal((await statusOf(t.clients.keys.cancelKeyDeletion({ keyId }))).code, status.FAILED_PRECONDITION);
  });

  it('destroys the key on every appliance once the window has passed', async () => {
    const keyId = 'lifecycle/AES_256';
    await t.clients.keys.rotateKey({ keyId });
    await t.clients.keys.scheduleKeyDeletion({ keyId, pendingWindowDays: 7 });
    now += 7 * day - 1000;
    assert.deepEqual(await t.broker.sweepDeletions(), { done: [], failures: [] }, 'nothing is due before the window ends');
    for (const appliance of ['hsm-a1', 'hsm-b1', 'hsm-c1']) {
      for (const version of [1, 2]) {
        assert.equal(await t.broker.fleet.executeOn(appliance, 'hasKey', { label: objectLabel(keyId, version) }), true, `${appliance} v${String(version)} still there`);
      }
    }
    now += 2000;
    assert.deepEqual(await t.broker.sweepDeletions(), { done: [keyId], failures: [] });
    for (const appliance of ['hsm-a1', 'hsm-b1', 'hsm-c1']) {
      for (const version of [1, 2]) {
        assert.equal(await t.broker.fleet.executeOn(appliance, 'hasKey', { label: objectLabel(keyId, version) }), false, `${appliance} v${String(version)}`);
      }
    }
    assert.equal((await statusOf(t.clients.keys.describeKey({ keyId }))).code, status.NOT_FOUND);
  });

  it('reports the fleet: zones, appliances, mechanisms and key counts', async () => {
    const fleetStatus = await t.clients.fleet.getFleetStatus({});
    assert.equal(fleetStatus.localZone, 'az-a');
    assert.deepEqual(fleetStatus.zones.map((zone) => [zone.name, zone.applianceCount, zone.healthyCount]), [['az-a', 1, 1], ['az-b', 1, 1], ['az-c', 1, 1]]);
    for (const appliance of fleetStatus.appliances) {
      assert.equal(appliance.state, 1, `${appliance.id} is HEALTHY`);
      assert.ok(appliance.mechanisms.includes('CKM_AES_GCM'));
      assert.ok(appliance.keysPresent >= 5, `${appliance.id} holds keys`);
      assert.ok(appliance.requestsTotal > 0);
      assert.equal(appliance.workers, 2);
    }
  });
});
