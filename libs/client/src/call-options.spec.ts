import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { BrokerError } from '@hsm-broker/errors';
import { checkDeadlineMs, deadlineFrom, toMetadata } from './call-options.js';

describe('call options', () => {
  it('accepts positive deadlines and Infinity', () => {
    assert.equal(checkDeadlineMs('deadlineMs', 1), 1);
    assert.equal(checkDeadlineMs('deadlineMs', Infinity), Infinity);
    assert.equal(deadlineFrom(250, 1_000), 1_250);
    assert.equal(deadlineFrom(Infinity, 1_000), Infinity);
  });

  it('rejects zero, negative and NaN deadlines, naming the field and value', () => {
    for (const value of [0, -5, Number.NaN]) {
      assert.throws(
        () => checkDeadlineMs('deadlineMs', value),
        (error: unknown) =>
          error instanceof BrokerError &&
          error.message === `deadlineMs: must be a positive number of milliseconds, got ${String(value)}`,
      );
    }
  });

  it('builds metadata from a record and copies a Metadata', () => {
    assert.deepEqual(toMetadata({ 'x-request-id': 'r1' }).get('x-request-id'), ['r1']);
    const original = new Metadata();
    original.set('x-a', '1');
    const copy = toMetadata(original);
    copy.set('x-a', '2');
    assert.deepEqual(original.get('x-a'), ['1']);
    assert.equal(Object.keys(toMetadata(undefined).getMap()).length, 0);
  });
});
