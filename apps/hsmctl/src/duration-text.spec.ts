import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from './duration-text.js';

describe('durations', () => {
  const any = { minMs: 0, maxMs: 48 * 3_600_000 };

  it('reads units, combinations and bare seconds', () => {
    assert.equal(parseDuration('500ms', '--d', any), 500);
    assert.equal(parseDuration('30s', '--d', any), 30_000);
    assert.equal(parseDuration('5m', '--d', any), 300_000);
    assert.equal(parseDuration('1m30s', '--d', any), 90_000);
    assert.equal(parseDuration('2h', '--d', any), 7_200_000);
    assert.equal(parseDuration('1.5', '--d', any), 1500);
  });

  it('names the field of a value it cannot read or that is out of range', () => {
    assert.throws(() => parseDuration('soon', '--duration', any), { message: "--duration: expected a duration such as 30s, 5m or 1m30s, got 'soon'" });
    assert.throws(() => parseDuration('5 m', '--duration', any), /--duration: expected a duration/);
    assert.throws(() => parseDuration('2s', '--duration', { minMs: 5000, maxMs: 86_400_000 }), {
      message: "--duration: expected a duration from 5s to 24h, got '2s'",
    });
  });

  it('writes durations for people', () => {
    assert.deepEqual([300, 1500, 60_000, 90_000, 3_600_000].map(formatDuration), ['300ms', '1.5s', '1m', '1m30s', '1h']);
  });
});
