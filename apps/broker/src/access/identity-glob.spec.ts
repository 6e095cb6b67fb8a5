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

  it('matches stars in the middle and at both ends, and fails without backtracking blow-up', () => {
    assert.ok(compileGlob('vpc-*/cards/*')('vpc-a/cards/visa'));
    assert.ok(!compileGlob('vpc-*/cards/*')('vpc-a/tokens/visa'));
    assert.ok(compileGlob('*a*b*c')('xxaxxbxxc') && !compileGlob('*a*b*c')('xxaxxbxx'));
    assert.ok(compileGlob('')('') && !compileGlob('')('a'));
    // Exponential for a backtracking regular expression (a.*a.*a.*a.*b on 128 "a"s); a bounded walk here.
    assert.ok(!compileGlob('*a*a*a*a*a*a*b')('a'.repeat(128)));
  });
});
