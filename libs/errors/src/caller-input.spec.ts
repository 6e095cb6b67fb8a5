import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quoteInput, quotedInputLength } from './caller-input.js';

describe('quoteInput', () => {
  it('leaves a short plain identifier as it is', () => {
    assert.equal(quoteInput('vpc-a/orders'), 'vpc-a/orders');
  });

  it('cuts long input to a short prefix and says how long it was', () => {
    const quoted = quoteInput('a'.repeat(1024 * 1024));
    assert.equal(quoted, `"${'a'.repeat(quotedInputLength)}"… (1048576 characters)`);
    assert.ok(quoted.length < 100);
  });

  it('escapes control characters so input cannot forge a log line', () => {
    assert.equal(quoteInput('x\n{"level":"error"}'), JSON.stringify('x\n{"level":"error"}'));
    assert.ok(!quoteInput('x\ny'.repeat(100)).includes('\n'));
    assert.equal(quoteInput(''), '""');
  });

  it('never splits a surrogate pair', () => {
    assert.equal(quoteInput('😀'.repeat(40), 3), '"😀😀😀"… (80 characters)');
  });
});
