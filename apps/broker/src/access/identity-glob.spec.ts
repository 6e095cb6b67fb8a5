import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileGlob } from './identity-glob.js';

describe('compileGlob', () => {
  it('matches * across path segments, ? as one character, and everything else literally', () => {
    const vpcA = compileGlob('spiffe://corp/vpc-a/*');
    assert.ok(vpcA('spiffe://corp/vpc-a/payments'));
    assert.ok(vpcA('spiffe://corp/vpc-a/team/payments'));
    assert.ok(!vpcA('spiffe://corp/vpc-ab/payments'));
    assert.ok(!vpcA('xspiffe://corp/vpc-a/payments'));
    assert.ok(compileGlob('key-?')('key-1') && !compileGlob('key-?')('key-10'));
    assert.ok(compileGlob('a.b+(c)[d]$')('a.b+(c)[d]$') && !compileGlob('a.b')('axb'));
    assert.ok(compileGlob('*')('anything at all'));
    assert.ok(!compileGlob('exact')('exact\n'));
  });
});
