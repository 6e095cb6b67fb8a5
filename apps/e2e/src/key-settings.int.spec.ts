import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBrokerClient, KeySpec, KeyUsage, type BrokerClient, type KeyMetadata } from '@hsm-broker/client';
import { BrokerError, Code, codeName } from '@hsm-broker/errors';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { runHsmctl } from './hsmctl-run.js';
import type { ProcessResult } from './process-run.js';

// Key settings (minimum decryption version, automatic rotation period) and
// the per-version replica view, through the client library and hsmctl
// against a real broker: what retiring a version does to old ciphertexts,
// and what `keys describe` shows about where every version lives.

const dayMs = 24 * 60 * 60 * 1000;

/** Asserts a zero exit and returns stdout as text. */
function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

/** Asserts that `promise` rejects with a BrokerError of this code and reason. */
async function rejectsWith(promise: Promise<unknown>, code: Code, reason: string): Promise<BrokerError> {
  let failure: unknown;
  await assert.rejects(promise, (error: unknown) => {
    failure = error;
    return true;
  });
  assert.ok(failure instanceof BrokerError, `expected a BrokerError, got ${String(failure)}`);
  assert.equal(codeName(failure.code), codeName(code), failure.message);
  assert.equal(failure.reason, reason, failure.message);
  return failure;
}

describe('key settings against a real broker', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  let client: BrokerClient;
  let appliances: string[];
  const hsmctl = (args: readonly string[], input?: Uint8Array): Promise<ProcessResult> =>
    runHsmctl(target.address, args, input === undefined ? {} : { input });

  before(async () => {
    target = await startBrokerUnderTest();
    client = createBrokerClient({ address: target.address, deadlineMs: 60_000 });
    appliances = (await client.getFleetStatus()).appliances.map((appliance) => appliance.id).sort();
    assert.equal(appliances.length, 3);
  });

  after(async () => {
    client?.close();
    await target?.dispose();
  });

  it('retires version 1: old ciphertexts are refused with KEY_VERSION_RETIRED until it is lowered again', async () => {
    await client.createKey({ keyId: 'settings/aes', keySpec: KeySpec.AES_256, keyUsage: KeyUsage.ENCRYPT_DECRYPT });
    const old = await client.encrypt({ keyId: 'settings/aes', plaintext: Buffer.from('sealed under v1') });
    assert.equal(old.keyVersion, 1);
    await client.rotateKey({ keyId: 'settings/aes' });

    const retired = await client.updateKeySettings({ keyId: 'settings/aes', minDecryptionVersion: 2 });
    assert.equal(retired.keyMetadata?.minDecryptionVersion, 2);
    assert.equal(retired.keyMetadata?.rotationPeriodDays, 0, 'a setting not given is left alone');
    const failure = await rejectsWith(
      client.decrypt({ ciphertext: old.ciphertext }),
      Code.FAILED_PRECONDITION,
      'KEY_VERSION_RETIRED',
    );
    assert.equal(failure.retryable, false);
    assert.match(failure.message, /version 1 of key settings\/aes is retired/);
    // The primary version is unaffected.
    const fresh = await client.encrypt({ keyId: 'settings/aes', plaintext: Buffer.from('v2') });
    assert.equal(fresh.keyVersion, 2);
    assert.equal(Buffer.from((await client.decrypt({ ciphertext: fresh.ciphertext })).plaintext).toString(), 'v2');

    // The material was kept: lowering the minimum brings version 1 back.
    const restored = await client.updateKeySettings({ keyId: 'settings/aes', minDecryptionVersion: 1 });
    assert.equal(restored.keyMetadata?.minDecryptionVersion, 1);
    const opened = await client.decrypt({ ciphertext: old.ciphertext });
    assert.equal(opened.keyVersion, 1);
    assert.equal(Buffer.from(opened.plaintext).toString(), 'sealed under v1');
  });

  it('refuses a minimum above the primary version, a bad rotation period and an unknown key', async () => {
    await rejectsWith(
      client.updateKeySettings({ keyId: 'settings/aes', minDecryptionVersion: 3 }),
      Code.INVALID_ARGUMENT,
      'INVALID_MIN_DECRYPTION_VERSION',
    );
    const badPeriod = await rejectsWith(
      client.updateKeySettings({ keyId: 'settings/aes', rotationPeriodDays: 30 }),
      Code.INVALID_ARGUMENT,
      'INVALID_ROTATION_PERIOD',
    );
    assert.match(badPeriod.message, /^rotation_period_days: /);
    await rejectsWith(client.updateKeySettings({ keyId: 'settings/none', minDecryptionVersion: 1 }), Code.NOT_FOUND, 'KEY_NOT_FOUND');
  });

  it('hsmctl keys update retires and restores a version; hsmctl decrypt reports the retirement', async () => {
    const sealed = await client.encrypt({ keyId: 'settings/aes', plaintext: Buffer.from('cli v1?') });
    assert.equal(sealed.keyVersion, 2);
    succeeded(await hsmctl(['keys', 'rotate', 'settings/aes']), 'keys rotate');

    const text = succeeded(await hsmctl(['keys', 'update', 'settings/aes', '--min-decryption-version', '3']), 'keys update');
    assert.match(text, /^Min decryption version:\s+3$/m);
    assert.match(text, /^\s+1\s+\S+\s+retired\s/m);
    assert.match(text, /^\s+2\s+\S+\s+retired\s/m);
    assert.match(text, /^\s+3\s+\S+\s+primary\s/m);

    const refused = await hsmctl(['decrypt'], sealed.ciphertext);
    assert.equal(refused.status, 1, refused.stderr);
    assert.equal(refused.stdout.length, 0, 'no plaintext is written on failure');
    assert.match(refused.stderr, /^hsmctl: FAILED_PRECONDITION: version 2 of key settings\/aes is retired .*\[KEY_VERSION_RETIRED\]\n$/);

    succeeded(await hsmctl(['keys', 'update', 'settings/aes', '--min-decryption-version', '2']), 'keys update');
    const opened = await hsmctl(['decrypt'], sealed.ciphertext);
    assert.equal(succeeded(opened, 'decrypt'), 'cli v1?');

    const tooHigh = await hsmctl(['keys', 'update', 'settings/aes', '--min-decryption-version', '4']);
    assert.equal(tooHigh.status, 1);
    assert.match(tooHigh.stderr, /^hsmctl: INVALID_ARGUMENT: min_decryption_version: .*\[INVALID_MIN_DECRYPTION_VERSION\]\n$/);
    const nothing = await hsmctl(['keys', 'update', 'settings/aes']);
    assert.equal(nothing.status, 2);
    assert.match(nothing.stderr, /nothing to change/);
  });

  it('creates a key that rotates automatically, and stops the rotation', async () => {
    const created = JSON.parse(
      succeeded(
        await hsmctl([
          'keys', 'create', '--spec', 'AES_256', '--usage', 'ENCRYPT_DECRYPT', '--key-id', 'settings/rotating',
          '--rotation-period-days', '90', '--output', 'json',
        ]),
        'keys create',
      ),
    ) as { rotationPeriodDays?: number; nextRotationTime?: string };
    assert.equal(created.rotationPeriodDays, 90);
    const next = Date.parse(created.nextRotationTime ?? '');
    assert.ok(Math.abs(next - (Date.now() + 90 * dayMs)) < 10 * 60 * 1000, created.nextRotationTime);

    const described = succeeded(await hsmctl(['keys', 'describe', 'settings/rotating']), 'keys describe');
    assert.match(described, /^Rotation period:\s+90 days$/m);
    assert.match(described, /^Next rotation:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);

    const stopped = succeeded(
      await hsmctl(['keys', 'update', 'settings/rotating', '--rotation-period-days', '0']),
      'keys update',
    );
    assert.match(stopped, /^Rotation period:\s+none \(manual only\)$/m);
    assert.doesNotMatch(stopped, /^Next rotation:/m);
    const key = (await client.describeKey({ keyId: 'settings/rotating' })).keyMetadata;
    assert.equal(key?.rotationPeriodDays, 0);
    assert.equal(key?.nextRotationTime, undefined);

    // Outside 90..2560 (and not 0): refused by hsmctl, nothing is created.
    const refused = await hsmctl([
      'keys', 'create', '--spec', 'AES_256', '--usage', 'ENCRYPT_DECRYPT', '--key-id', 'settings/never', '--rotation-period-days', '30',
    ]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /--rotation-period-days: expected 0 or an integer from 90 to 2560, got '30'/);
    await rejectsWith(client.describeKey({ keyId: 'settings/never' }), Code.NOT_FOUND, 'KEY_NOT_FOUND');
  });

  it('describes where every version lives: all appliances hold each, freshly verified, none missing', async () => {
    const started = Date.now();
    const key = (await client.describeKey({ keyId: 'settings/aes' })).keyMetadata as KeyMetadata;
    assert.deepEqual(
      key.versions.map((version) => version.version),
      [1, 2, 3],
    );
    for (const version of key.versions) {
      assert.deepEqual(
        version.replicas.map((replica) => replica.applianceId).sort(),
        appliances,
        `version ${String(version.version)} holders`,
      );
      assert.deepEqual(version.missingReplicas, [], `version ${String(version.version)} missing`);
      for (const replica of version.replicas) {
        const verifiedAt = replica.verifiedAt?.getTime() ?? 0;
        assert.ok(verifiedAt >= (version.createdAt?.getTime() ?? 0) - 1_000, `${replica.applianceId} verified after creation`);
        assert.ok(verifiedAt <= started + 1_000, `${replica.applianceId} verified in the past`);
      }
    }

    const text = succeeded(await hsmctl(['keys', 'describe', 'settings/aes']), 'keys describe');
    assert.match(text, /^VERSION\s+CREATED\s+STATUS\s+HOLDERS\s+MISSING\s+LAST VERIFIED$/m);
    const holders = appliances.join(', ');
    for (const version of [1, 2, 3]) {
      assert.match(
        text,
        new RegExp(`^\\s+${String(version)}\\s+\\S+Z\\s+\\S+\\s+${holders}\\s+-\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`, 'm'),
        `version ${String(version)} row`,
      );
    }
    const json = JSON.parse(succeeded(await hsmctl(['keys', 'describe', 'settings/aes', '--output', 'json']), 'keys describe json')) as {
      versions: { version: number; replicas: { applianceId: string; verifiedAt: string }[] }[];
    };
    assert.deepEqual(
      json.versions.map((version) => version.replicas.length),
      [3, 3, 3],
    );
  });
});
