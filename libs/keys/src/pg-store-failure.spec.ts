import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { storeFailure, storeFailureDetail, storeReason } from './pg-store-failure.js';

/** What pg throws: an Error with the server's SQLSTATE and the names it reported. */
function pgError(message: string, fields: Record<string, string>): Error {
  return Object.assign(new Error(message), fields);
}

describe('storeFailure', () => {
  it('gives callers a stable INTERNAL message with the SQLSTATE, never pg\'s text', () => {
    const raw = pgError('column "secret_column" of relation "keys" does not exist: UPDATE keys SET secret_column = $1', { code: '42703', table: 'keys', column: 'secret_column' });
    const failure = storeFailure(raw);
    assert.equal(failure.code, Code.INTERNAL);
    assert.equal(failure.reason, storeReason.failed);
    assert.equal(failure.message, 'key store failed (SQLSTATE 42703)');
    assert.deepEqual(storeFailureDetail(raw), { code: '42703', text: raw.message, table: 'keys', column: 'secret_column' });
  });

  it('leaves out what is not a SQLSTATE or errno, and pg\'s row values', () => {
    const raw = pgError('invalid input syntax for type bigint: "hunter2"', { code: 'not a code "hunter2"', detail: 'Key (key_id)=(hunter2)' });
    assert.equal(storeFailure(raw).message, 'key store failed');
    assert.ok(!JSON.stringify(storeFailureDetail(raw)).includes('Key (key_id)'));
  });

  it('says UNAVAILABLE without the host pg names, and counts a read timeout as unavailable', () => {
    const refused = storeFailure(pgError('connect ECONNREFUSED 10.20.30.40:5432', { code: 'ECONNREFUSED' }));
    assert.equal(refused.code, Code.UNAVAILABLE);
    assert.equal(refused.message, 'key store unavailable (ECONNREFUSED)');
    assert.equal(refused.retryable, true);
    const slow = storeFailure(new Error('Query read timeout'));
    assert.equal(slow.code, Code.UNAVAILABLE);
    assert.equal(slow.message, 'key store unavailable');
  });

  it('keeps errors that are already the broker\'s', () => {
    const own = new BrokerError(Code.NOT_FOUND, 'key_id: no such key', { reason: 'KEY_NOT_FOUND' });
    assert.equal(storeFailure(own), own);
  });
});
