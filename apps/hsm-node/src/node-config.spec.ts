import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeConfigError, loadNodeConfig } from './node-config.js';

const base = { HSM_NODE_ID: 'hsm-a1', HSM_NODE_SO_PIN: 'so-pin-for-test', HSM_NODE_USER_PIN: 'user-pin-for-test' };

describe('loadNodeConfig', () => {
  it('lets only the broker use the clone endpoint unless HSM_NODE_CLONE_CLIENTS says otherwise', () => {
    assert.deepEqual([...loadNodeConfig({ ...base }).cloneClients], ['broker']);
    assert.deepEqual([...loadNodeConfig({ ...base, HSM_NODE_CLONE_CLIENTS: 'broker-1, broker-2' }).cloneClients], ['broker-1', 'broker-2']);
    assert.throws(() => loadNodeConfig({ ...base, HSM_NODE_CLONE_CLIENTS: ' , ' }), (error: unknown) => error instanceof NodeConfigError && /HSM_NODE_CLONE_CLIENTS/.test(error.message));
  });
});
