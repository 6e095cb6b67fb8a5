import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, ListAliasesCommand, NotFoundException, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import type { KMSClient } from '@aws-sdk/client-kms';
import { startKmsTestBroker } from '../testing/kms-harness.js';
import type { KmsTestBroker } from '../testing/kms-harness.js';

// AWS KMS deletes a key's aliases when the key's deletion completes. The
// key lifecycle runs on a clock this file moves past the waiting period.

const caller = { accessKeyId: 'AKIAALIASDELETE0', identity: 'spiffe://corp/alias-deletion' };
const dayMs = 86_400_000;

describe('KMS aliases of a destroyed key', { timeout: 300_000 }, () => {
  let t: KmsTestBroker;
  let kms: KMSClient;
  let now = Date.now();

  before(async () => {
    t = await startKmsTestBroker([caller], { clock: () => now });
    kms = t.kmsClient();
  });
  after(async () => {
    await t.dispose();
  });

  it('are removed when the deletion completes: ListAliases no longer shows them and the name is free again', async () => {
    const doomed = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
    const kept = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/doomed/one', TargetKeyId: doomed }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/doomed/two', TargetKeyId: doomed }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/kept', TargetKeyId: kept }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: doomed, PendingWindowInDays: 7 }));
    // Pending deletion is not deletion: the aliases stay until the key is destroyed.
    assert.deepEqual((await kms.send(new ListAliasesCommand({}))).Aliases?.map((alias) => alias.AliasName), ['alias/doomed/one', 'alias/doomed/two', 'alias/kept']);

    now += 8 * dayMs;
    const report = await t.broker.sweepDeletions();
    assert.deepEqual(report.done, [doomed], report.failures.join('; '));

    const listed = await kms.send(new ListAliasesCommand({}));
    assert.deepEqual(listed.Aliases?.map((alias) => [alias.AliasName, alias.TargetKeyId]), [['alias/kept', kept]]);
    assert.deepEqual((await kms.send(new ListAliasesCommand({ KeyId: doomed }))).Aliases, []);
    assert.ok((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/doomed/one' })).catch((error: unknown) => error)) instanceof NotFoundException);
    // The name can point at another key now.
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/doomed/one', TargetKeyId: kept }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/doomed/one' }))).KeyMetadata?.KeyId, kept);
  });
});
