import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import type { CallContext } from '../call-pipeline.js';
import { createLogger } from '../logger.js';
import { AccessControl } from './access-control.js';

const dir = mkdtempSync(join(tmpdir(), 'hsmb-access-unit-'));
const file = join(dir, 'policy.yaml');
writeFileSync(
  file,
  [
    'grants:',
    '  - identity: "spiffe://corp/vpc-a/*"',
    '    roles: [crypto-user]',
    '    keys: ["vpc-a/*"]',
    '    conditions: { encryption_context: { tenant: a } }',
    '  - identity: "spiffe://corp/sre/*"',
    '    roles: [auditor]',
  ].join('\n'),
);
const access = new AccessControl({ policyFile: file, log: createLogger('error') });

function call(identity: string, method: string): CallContext {
  return { deadline: Date.now() + 1000, method, identity, peer: 'ipv4:127.0.0.1:1', requestId: 'r', facts: { appliances: [] } };
}

function deniedBy(action: () => void): string {
  try {
    action();
  } catch (error: unknown) {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, Code.PERMISSION_DENIED);
    assert.equal(error.reason, 'ACCESS_DENIED');
    return error.message;
  }
  assert.fail('expected PERMISSION_DENIED');
}

describe('AccessControl', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('denies by default, naming identity and operation', () => {
    assert.equal(deniedBy(() => access.admit(call('spiffe://corp/vpc-b/x', 'Encrypt'))), 'spiffe://corp/vpc-b/x may not call Encrypt');
    assert.match(deniedBy(() => access.admit(call('spiffe://corp/vpc-a/x', 'CreateKey'))), /may not call CreateKey/);
    assert.match(deniedBy(() => access.admit(call('anonymous', 'GetFleetStatus'))), /^anonymous may not call GetFleetStatus/);
    access.admit(call('spiffe://corp/vpc-a/x', 'GenerateRandom'));
  });

  it('checks keys and conditions, and records the key for the audit trail', () => {
    const context = call('spiffe://corp/vpc-a/x', 'Decrypt');
    access.key(context, 'vpc-a/k', { tenant: 'a', extra: '1' }, 3);
    assert.deepEqual([context.facts.keyId, context.facts.keyVersion], ['vpc-a/k', 3]);
    const refused = call('spiffe://corp/vpc-a/x', 'Decrypt');
    assert.equal(deniedBy(() => access.key(refused, 'vpc-b/k', { tenant: 'a' })), 'spiffe://corp/vpc-a/x may not call Decrypt on key vpc-b/k');
    assert.equal(refused.facts.keyId, undefined);
    deniedBy(() => access.key(call('spiffe://corp/vpc-a/x', 'Decrypt'), 'vpc-a/k', { tenant: 'b' }));
    deniedBy(() => access.key(call('spiffe://corp/vpc-a/x', 'Sign'), 'vpc-a/k'));
  });

  it('lets a grant without keys cover every key, for its own methods only', () => {
    access.key(call('spiffe://corp/sre/oncall', 'DescribeKey'), 'anything/at/all');
    assert.ok(access.visible(call('spiffe://corp/sre/oncall', 'ListKeys'), 'vpc-b/k'));
    assert.ok(!access.visible(call('spiffe://corp/vpc-a/x', 'ListKeys'), 'vpc-a/k'));
    deniedBy(() => access.key(call('spiffe://corp/sre/oncall', 'Decrypt'), 'vpc-b/k'));
  });

  it('shortens long or unprintable identities and key ids in messages', () => {
    const message = deniedBy(() => access.key(call('spiffe://corp/vpc-a/x', 'Encrypt'), `vpc-b/${'k'.repeat(500)}\u0000`));
    assert.ok(message.length < 200);
  });
});
