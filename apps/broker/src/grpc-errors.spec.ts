import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { retryPushbackTrailer, toServiceError } from './grpc-errors.js';

describe('toServiceError', () => {
  it('tells gRPC clients not to retry when the fleet refused (UNAVAILABLE from the appliances)', () => {
    const refused = toServiceError(new BrokerError(Code.UNAVAILABLE, 'no appliance is available for sign', { reason: 'NO_APPLIANCE_AVAILABLE', failureClass: 'appliance' }));
    assert.equal(refused.code, Code.UNAVAILABLE);
    assert.deepEqual(refused.metadata?.get(retryPushbackTrailer), ['-1']);
  });

  it('leaves other failures to the client retry policy', () => {
    const store = toServiceError(new BrokerError(Code.UNAVAILABLE, 'key store unreachable', { reason: 'STORE_UNAVAILABLE', failureClass: 'internal' }));
    assert.deepEqual(store.metadata?.get(retryPushbackTrailer), []);
    const caller = toServiceError(BrokerError.invalidArgument('key_id', 'must not be empty', 'INVALID_KEY_ID'));
    assert.deepEqual(caller.metadata?.get(retryPushbackTrailer), []);
  });
});
