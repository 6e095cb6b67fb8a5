import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { testDatabase } from '@hsm-broker/keys';
import type { TestDatabase } from '@hsm-broker/keys';
import { KeySpec, KeyState, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { statusOf } from './testing/broker-harness.js';
import { startReplicaSet } from './testing/replica-set.js';
import type { ReplicaSet } from './testing/replica-set.js';

const day = 24 * 60 * 60 * 1000;
const aes = { keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT, description: '', labels: {}, rotationPeriodDays: 0 };

/** Resolves when `replica`'s store announces a change to `keyId`. */
function changeSeen(set: ReplicaSet, index: number, keyId: string): Promise<void> {
  return new Promise((resolve) => {
    const detach = set.replicas[index]?.broker.store.onKeyChanged((changed) => {
      if (changed === keyId) {
        detach?.();
        resolve();
      }
    });
  });
}

describe('three broker replicas on one PostgreSQL and one SoftHSM fleet', { timeout: 600_000 }, () => {
  let db: TestDatabase;
  let set: ReplicaSet;
  let now = Date.parse('2026-03-01T00:00:00Z');

  before(async () => {
    db = await testDatabase();
    set = await startReplicaSet(3, db.url, { clock: () => now });
  });

  after(async () => {
    await set.dispose();
    await db.dispose();
  });

  const replica = (index: number) => {
    const found = set.replicas[index];
    assert.ok(found);
    return found;
  };

  it('creates a key once when every replica races to create it', async () => {
    const outcomes = await Promise.allSettled(set.replicas.map((r) => r.clients.keys.createKey({ ...aes, keyId: 'race/create' })));
    const created = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    assert.equal(created.length, 1, 'exactly one CreateKey wins');
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') assert.equal((outcome.reason as { code?: number }).code, status.ALREADY_EXISTS);
    }
    // Its material is the one registered: every replica encrypts, and any other decrypts.
    for (let i = 0; i < 3; i++) {
      const sealed = await replica(i).clients.crypto.encrypt({ keyId: 'race/create', plaintext: Buffer.from(`from ${String(i)}`), encryptionContext: {} });
      const opened = await replica((i + 1) % 3).clients.crypto.decrypt({ ciphertext: sealed.ciphertext, encryptionContext: {} });
      assert.equal(Buffer.from(opened.plaintext).toString(), `from ${String(i)}`);
    }
  });

  it('serialises racing RotateKey calls: one new version per call, no version made twice', async () => {
    await replica(0).clients.keys.createKey({ ...aes, keyId: 'race/rotate' });
    const sealed = [await replica(0).clients.crypto.encrypt({ keyId: 'race/rotate', plaintext: Buffer.from('v1'), encryptionContext: {} })];
    const rotations = await Promise.all([0, 1, 2, 0, 1, 2].map((i) => replica(i).clients.keys.rotateKey({ keyId: 'race/rotate' })));
    const primaries = rotations.map((response) => response.keyMetadata?.primaryVersion).sort();
    assert.deepEqual(primaries, [2, 3, 4, 5, 6, 7], 'each rotation made its own version');
    for (let i = 0; i < 3; i++) {
      const described = await replica(i).clients.keys.describeKey({ keyId: 'race/rotate' });
      assert.equal(described.keyMetadata?.primaryVersion, 7, `replica ${String(i)} sees the last primary`);
      sealed.push(await replica(i).clients.crypto.encrypt({ keyId: 'race/rotate', plaintext: Buffer.from(`v7 ${String(i)}`), encryptionContext: {} }));
    }
    for (const blob of sealed) {
      for (let i = 0; i < 3; i++) await replica(i).clients.crypto.decrypt({ ciphertext: blob.ciphertext, encryptionContext: {} });
    }
  });

  it('rotates a due key exactly once when every replica sweeps at the same time', async () => {
    await replica(0).clients.keys.createKey({ ...aes, keyId: 'race/auto', rotationPeriodDays: 90 });
    now += 91 * day;
    const reports = await Promise.all(set.replicas.map((r) => r.broker.sweepRotations()));
    const rotated = reports.flatMap((report) => report.done).filter((keyId) => keyId === 'race/auto');
    assert.equal(rotated.length, 1, `rotations reported: ${JSON.stringify(reports)}`);
    const described = await replica(2).clients.keys.describeKey({ keyId: 'race/auto' });
    assert.equal(described.keyMetadata?.primaryVersion, 2);
  });

  it('schedules a deletion once under racing calls, and destroys the key once when every replica sweeps', async () => {
    await replica(0).clients.keys.createKey({ ...aes, keyId: 'race/delete' });
    const scheduled = await Promise.all(set.replicas.map((r) => r.clients.keys.scheduleKeyDeletion({ keyId: 'race/delete', pendingWindowDays: 7 })));
    const times = new Set(scheduled.map((response) => response.keyMetadata?.deletionTime?.getTime()));
    assert.equal(times.size, 1, 'one deletion time, not one per replica');
    now += 8 * day;
    const reports = await Promise.all(set.replicas.map((r) => r.broker.sweepDeletions()));
    assert.equal(reports.flatMap((report) => report.done).filter((keyId) => keyId === 'race/delete').length, 1, JSON.stringify(reports));
    assert.deepEqual(reports.flatMap((report) => report.failures), []);
    for (let i = 0; i < 3; i++) {
      assert.equal((await statusOf(replica(i).clients.keys.describeKey({ keyId: 'race/delete' }))).code, status.NOT_FOUND);
    }
  });

  it('tells every replica of a change: a key disabled on one is refused by the others once their store hears of it', async () => {
    await replica(0).clients.keys.createKey({ ...aes, keyId: 'cache/disable' });
    for (let i = 0; i < 3; i++) await replica(i).clients.crypto.encrypt({ keyId: 'cache/disable', plaintext: Buffer.from('x'), encryptionContext: {} });
    const heard = [changeSeen(set, 1, 'cache/disable'), changeSeen(set, 2, 'cache/disable')];
    const started = Date.now();
    await replica(0).clients.keys.disableKey({ keyId: 'cache/disable' });
    await Promise.all(heard);
    console.log(`# change heard by both other replicas ${String(Date.now() - started)} ms after DisableKey was sent`);
    for (const i of [1, 2]) {
      const refused = await statusOf(replica(i).clients.crypto.encrypt({ keyId: 'cache/disable', plaintext: Buffer.from('x'), encryptionContext: {} }));
      assert.equal(refused.code, status.FAILED_PRECONDITION, `replica ${String(i)}: ${refused.message}`);
      const described = await replica(i).clients.keys.describeKey({ keyId: 'cache/disable' });
      assert.equal(described.keyMetadata?.keyState, KeyState.DISABLED);
    }
  });

  it('drops the cached public key on every replica when one disables the key: software Verify refuses it too', async () => {
    await replica(0).clients.keys.createKey({ keyId: 'cache/verify', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    const message = Buffer.from('signed once, verified everywhere');
    const signing = { keyId: 'cache/verify', message, messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };
    const { signature } = await replica(0).clients.crypto.sign(signing);
    const verify = (i: number) => replica(i).clients.crypto.verify({ ...signing, keyVersion: 0, signature });
    // Every replica now holds the key in its verification cache.
    for (let i = 0; i < 3; i++) assert.equal((await verify(i)).signatureValid, true, `replica ${String(i)} before`);
    const heard = [changeSeen(set, 1, 'cache/verify'), changeSeen(set, 2, 'cache/verify')];
    await replica(0).clients.keys.disableKey({ keyId: 'cache/verify' });
    await Promise.all(heard);
    for (const i of [1, 2]) {
      const refused = await statusOf(verify(i));
      assert.equal(refused.code, status.FAILED_PRECONDITION, `replica ${String(i)}: ${refused.message}`);
    }
  });

  it('runs background work on exactly one replica, and moves it when that replica stops', async () => {
    const leaders = () => set.replicas.filter((r) => r.broker.leadership.isLeader);
    assert.equal(leaders().length, 1, 'one leader');
    const leader = leaders()[0];
    assert.ok(leader);
    const before = leader.broker.leadership.term;
    const others = set.replicas.filter((r) => r !== leader);
    const takeover = new Promise<number>((resolve) => {
      for (const other of others) other.broker.leadership.onChange((isLeader, term) => isLeader && resolve(term));
    });
    await leader.stop();
    const term = await takeover;
    assert.ok(term > before, `term ${String(before)} then ${String(term)}`);
    assert.equal(others.filter((r) => r.broker.leadership.isLeader).length, 1);
  });
});
