import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { kmsErrorOf } from './kms-errors.js';

describe('KMS error shapes', () => {
  it('maps broker reasons and codes onto KMS types and HTTP statuses', () => {
    const cases: [BrokerError, string, number][] = [
      [new BrokerError(Code.NOT_FOUND, 'key_id: key "k" does not exist', { reason: 'KEY_NOT_FOUND' }), 'NotFoundException', 400],
      [new BrokerError(Code.FAILED_PRECONDITION, 'disabled', { reason: 'KEY_DISABLED' }), 'DisabledException', 400],
      [new BrokerError(Code.FAILED_PRECONDITION, 'pending', { reason: 'KEY_PENDING_DELETION' }), 'KMSInvalidStateException', 400],
      [BrokerError.invalidArgument('ciphertext', 'bad', 'INVALID_CIPHERTEXT'), 'InvalidCiphertextException', 400],
      [BrokerError.invalidArgument('num_bytes', 'too many', 'INVALID_NUM_BYTES'), 'ValidationException', 400],
      [new BrokerError(Code.PERMISSION_DENIED, 'no', { reason: 'ACCESS_DENIED' }), 'AccessDeniedException', 400],
      [new BrokerError(Code.RESOURCE_EXHAUSTED, 'slow down', { reason: 'QUOTA_EXCEEDED' }), 'ThrottlingException', 400],
      [new BrokerError(Code.UNAVAILABLE, 'no appliance', { reason: 'NO_SOURCE' }), 'KMSInternalException', 500],
      [new BrokerError(Code.DEADLINE_EXCEEDED, 'late'), 'DependencyTimeoutException', 503],
      [new BrokerError(Code.UNAUTHENTICATED, 'bad', { reason: 'INVALID_SIGNATURE' }), 'InvalidSignatureException', 400],
    ];
    for (const [error, type, status] of cases) {
      const shape = kmsErrorOf(error);
      assert.equal(shape.type, type, error.reason);
      assert.equal(shape.status, status, error.reason);
      assert.equal(shape.message, error.message);
    }
  });

  it('keeps internal failure messages out of the answer', () => {
    const shape = kmsErrorOf(new Error('worker 3 said: /var/lib/hsmb/pins/a.pin unreadable'));
    assert.equal(shape.type, 'KMSInternalException');
    assert.equal(shape.status, 500);
    assert.doesNotMatch(shape.message, /pin/);
  });
});
