import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { parsePolicy } from './access-policy.js';
import { RequestQuotas } from './request-quotas.js';

const rules = parsePolicy(
  ['grants: []', 'quotas:', '  - identity: "spiffe://corp/vpc-a/*"', '    symmetric: { ratePerSecond: 2, burst: 3 }', '    keyAdmin: { ratePerSecond: 1 }'].join('\n'),
  'p',
).quotas;

function refusal(action: () => void): BrokerError {
  try {
    action();
  } catch (error: unknown) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  assert.fail('expected a refusal');
}

describe('RequestQuotas', () => {
  it('gives each identity its own bucket per operation class, refills at the rate and says how long to wait', () => {
    let now = 0;
    const quotas = new RequestQuotas(() => now);
    quotas.setRules(rules);
    for (let index = 0; index < 3; index += 1) quotas.charge('spiffe://corp/vpc-a/one', 'Encrypt');
    const refused = refusal(() => quotas.charge('spiffe://corp/vpc-a/one', 'Decrypt'));
    assert.equal(refused.code, Code.RESOURCE_EXHAUSTED);
    assert.equal(refused.reason, 'QUOTA_EXHAUSTED');
    assert.equal(refused.details['retryAfterMs'], 500);
    // Another identity under the same pattern, another class, and unlimited identities are untouched.
    quotas.charge('spiffe://corp/vpc-a/two', 'Encrypt');
    quotas.charge('spiffe://corp/vpc-a/one', 'CreateKey');
    quotas.charge('spiffe://corp/vpc-a/one', 'Sign');
    for (let index = 0; index < 100; index += 1) quotas.charge('spiffe://corp/vpc-b/x', 'Encrypt');
    quotas.charge('spiffe://corp/vpc-a/one', 'DrainAppliance');
    now += 500;
    quotas.charge('spiffe://corp/vpc-a/one', 'Encrypt');
    assert.equal(refusal(() => quotas.charge('spiffe://corp/vpc-a/one', 'Encrypt')).details['retryAfterMs'], 500);
  });
});
