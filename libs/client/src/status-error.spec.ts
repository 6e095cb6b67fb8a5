import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { BrokerError, Code, reasonTrailer, retryAfterTrailer } from '@hsm-broker/errors';
import { errorFromStatus, toBrokerError } from './status-error.js';

function trailers(entries: Record<string, string>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.add(key, value);
  return metadata;
}

describe('errorFromStatus', () => {
  it('keeps the gRPC code and message', () => {
    const error = errorFromStatus({ code: GrpcStatus.NOT_FOUND, details: "key 'k1' not found" });
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, Code.NOT_FOUND);
    assert.equal(error.message, "key 'k1' not found");
  });

  it('numbers every gRPC status as @hsm-broker/errors does', () => {
    for (let code = 1; code <= 16; code += 1) {
      assert.equal(errorFromStatus({ code, details: 'x' }).code, code);
    }
  });

  it('takes the reason and the retry verdict from trailing metadata', () => {
    const error = errorFromStatus({
      code: GrpcStatus.FAILED_PRECONDITION,
      details: 'key k1 is disabled',
      metadata: trailers({ 'hsmb-reason': 'KEY_DISABLED', 'hsmb-retryable': 'false' }),
    });
    assert.equal(error.reason, 'KEY_DISABLED');
    assert.equal(error.retryable, false);
    assert.equal(error.failureClass, 'caller');
  });

  it('reads the wait of a quota refusal from the retry-after trailer the broker writes', () => {
    const metadata = new Metadata();
    metadata.set(reasonTrailer, 'QUOTA_EXHAUSTED');
    metadata.set(retryAfterTrailer, '1500');
    const error = errorFromStatus({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'request quota exhausted', metadata });
    assert.equal(error.reason, 'QUOTA_EXHAUSTED');
    assert.equal(error.details['retryAfterMs'], 1500);
    const garbled = new Metadata();
    garbled.set(retryAfterTrailer, 'soon');
    assert.equal(errorFromStatus({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'x', metadata: garbled }).details['retryAfterMs'], undefined);
  });

  it('lets the broker mark an otherwise retryable code as final, and the reverse', () => {
    const final = errorFromStatus({
      code: GrpcStatus.UNAVAILABLE,
      details: 'no appliance holds key version 3',
      metadata: trailers({ 'hsmb-retryable': 'false' }),
    });
    assert.equal(final.retryable, false);
    const retry = errorFromStatus({
      code: GrpcStatus.ABORTED,
      details: 'conflict',
      metadata: trailers({ 'hsmb-retryable': 'TRUE' }),
    });
    assert.equal(retry.retryable, true);
  });

  it('falls back to the code defaults without metadata', () => {
    const unavailable = errorFromStatus({ code: GrpcStatus.UNAVAILABLE, details: 'down', metadata: new Metadata() });
    assert.equal(unavailable.reason, 'UNAVAILABLE');
    assert.equal(unavailable.retryable, true);
    const invalid = errorFromStatus({ code: GrpcStatus.INVALID_ARGUMENT, details: 'bad' });
    assert.equal(invalid.reason, 'INVALID_ARGUMENT');
    assert.equal(invalid.retryable, false);
  });

  it('ignores a retry verdict it cannot read and an empty reason', () => {
    const error = errorFromStatus({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: 'quota',
      metadata: trailers({ 'hsmb-retryable': 'maybe', 'hsmb-reason': '  ' }),
    });
    assert.equal(error.retryable, true);
    assert.equal(error.reason, 'RESOURCE_EXHAUSTED');
  });

  it('maps codes outside the gRPC range, and OK, to UNKNOWN', () => {
    assert.equal(errorFromStatus({ code: 99, details: 'odd' }).code, Code.UNKNOWN);
    assert.equal(errorFromStatus({ code: -1, details: 'odd' }).code, Code.UNKNOWN);
    assert.equal(errorFromStatus({ code: 0, details: 'odd' }).code, Code.UNKNOWN);
  });

  it('uses the code name when the status has no message', () => {
    assert.equal(errorFromStatus({ code: GrpcStatus.INTERNAL, details: '' }).message, 'INTERNAL');
  });
});

describe('toBrokerError', () => {
  it('converts a grpc-js ServiceError and keeps it as the cause', () => {
    const serviceError = Object.assign(new Error('5 NOT_FOUND: gone'), {
      code: GrpcStatus.NOT_FOUND,
      details: 'gone',
      metadata: trailers({ 'hsmb-reason': 'KEY_NOT_FOUND' }),
    });
    const error = toBrokerError(serviceError);
    assert.equal(error.code, Code.NOT_FOUND);
    assert.equal(error.message, 'gone');
    assert.equal(error.reason, 'KEY_NOT_FOUND');
    assert.equal(error.cause, serviceError);
  });

  it('passes a BrokerError through unchanged', () => {
    const original = new BrokerError(Code.ABORTED, 'x');
    assert.equal(toBrokerError(original), original);
  });

  it('treats Node errors (string codes) as local failures, not statuses', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(toBrokerError(refused).code, Code.UNAVAILABLE);
    assert.equal(toBrokerError(new TypeError('bad')).code, Code.INTERNAL);
    assert.equal(toBrokerError('text').code, Code.INTERNAL);
  });
});
