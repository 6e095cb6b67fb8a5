import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyError, parsePolicy } from './access-policy.js';

function refused(text: string, pattern: RegExp): void {
  assert.throws(() => parsePolicy(text, 'policy.yaml'), (error: unknown) => error instanceof PolicyError && pattern.test(error.message));
}

describe('parsePolicy', () => {
  it('reads the documented shape: grants with identity and key globs, conditions, custom roles and quotas', () => {
    const policy = parsePolicy(
      [
        'roles:',
        '  signer: [Sign, GetPublicKey]',
        'grants:',
        '  - identity: "spiffe://corp/vpc-a/*"',
        '    roles: [crypto-user, signer]',
        '    keys: ["vpc-a/*"]',
        '    conditions:',
        '      encryption_context: { tenant: a }',
        '  - identity: "spiffe://corp/sre/*"',
        '    roles: [fleet-operator, auditor]',
        'quotas:',
        '  - identity: "spiffe://corp/vpc-a/*"',
        '    symmetric: { ratePerSecond: 100, burst: 200 }',
        '    asymmetric: { ratePerSecond: 5 }',
      ].join('\n'),
      'policy.yaml',
    );
    const [a, sre] = policy.grants;
    assert.ok(a && sre);
    assert.ok(a.matchesIdentity('spiffe://corp/vpc-a/payments'));
    assert.ok(!a.matchesIdentity('spiffe://corp/vpc-b/payments'));
    assert.ok(a.methods.has('Decrypt') && a.methods.has('Sign') && !a.methods.has('CreateKey'));
    assert.deepEqual(a.encryptionContext, { tenant: 'a' });
    assert.ok(a.keys?.[0]?.('vpc-a/orders/key1'));
    assert.equal(sre.keys, undefined);
    assert.ok(sre.methods.has('DrainAppliance') && sre.methods.has('ListKeys') && sre.methods.has('TailAudit') && !sre.methods.has('Decrypt'));
    assert.deepEqual(policy.quotas[0]?.limits, { symmetric: { ratePerSecond: 100, burst: 200 }, asymmetric: { ratePerSecond: 5, burst: 5 } });
  });

  it('names the line and the field of what is wrong', () => {
    refused('grants:\n  - identity: a\n    roles: [crypto-usr]\n', /^policy\.yaml line 3: grants\[0\]\.roles\[0\]: "crypto-usr" is not a role/);
    refused('grants:\n  - identity: a\n    roles: [auditor]\n    key: ["x"]\n', /^policy\.yaml line 4: grants\[0\]\.key: unknown field/);
    refused('grants:\n  - roles: [auditor]\n', /^policy\.yaml line 2: grants\[0\]\.identity: expected a non-empty glob string/);
    refused('grants:\n  - identity: a\n    roles: []\n', /line 3: grants\[0\]\.roles: expected at least one role/);
    refused('grants:\n  - identity: a\n    roles: [auditor]\n    conditions:\n      encryption_context: { tenant: 7 }\n', /line 5: grants\[0\]\.conditions\.encryption_context\.tenant: expected a string/);
    refused('roles:\n  reader: [Decrypt, Explode]\ngrants: []\n', /line 2: roles\.reader\[1\]: "Explode" is not a broker method/);
    refused('roles:\n  auditor: [Decrypt]\ngrants: []\n', /roles\.auditor: is a built-in role/);
    refused('grants: []\nquotas:\n  - identity: a\n    symmetric: { ratePerSecond: -1 }\n', /line 4: quotas\[0\]\.symmetric\.ratePerSecond: -1 is not valid/);
    refused('grants:\n  - identity: [a\n', /^policy\.yaml line \d: not valid YAML/);
    refused('', /the file is empty/);
    refused('grant: []\n', /line 1: grant: unknown field/);
    refused('grants:\n  - identity: a\n    identity: b\n    roles: [auditor]\n', /not valid YAML/);
  });

  it('accepts an empty grant list, which denies everything', () => {
    assert.deepEqual(parsePolicy('grants: []\n', 'p').grants, []);
  });
});
