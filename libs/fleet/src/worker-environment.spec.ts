import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workerEnvironment } from './worker-environment.js';

describe('workerEnvironment', () => {
  it('passes only harmless variables and the appliance’s own module environment', () => {
    const parent = {
      PATH: '/usr/bin',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      RES_OPTIONS: 'timeout:1 attempts:1',
      LUNA_A1_PIN: '1234-secret',
      LUNA_B1_SO_PIN: '9999-secret',
      HSMB_CONFIG: '/etc/hsm-broker/broker.yaml',
      SOFTHSM2_CONF: '/broker/own/softhsm2.conf',
      AWS_SECRET_ACCESS_KEY: 'x',
    };
    const env = workerEnvironment(parent, { SOFTHSM2_CONF: '/fleet/a1/softhsm2.conf' });
    assert.deepEqual(env, { PATH: '/usr/bin', LANG: 'C.UTF-8', LC_ALL: 'C', RES_OPTIONS: 'timeout:1 attempts:1', SOFTHSM2_CONF: '/fleet/a1/softhsm2.conf' });
  });

  it('sizes the thread pool to the sessions unless the module environment does', () => {
    assert.equal(workerEnvironment({}, {}, 2)['UV_THREADPOOL_SIZE'], undefined);
    assert.equal(workerEnvironment({}, {}, 16)['UV_THREADPOOL_SIZE'], '16');
    assert.equal(workerEnvironment({}, { UV_THREADPOOL_SIZE: '8' }, 16)['UV_THREADPOOL_SIZE'], '8');
    assert.equal(workerEnvironment({ UV_THREADPOOL_SIZE: '64' }, {}, 1)['UV_THREADPOOL_SIZE'], undefined);
  });
});
