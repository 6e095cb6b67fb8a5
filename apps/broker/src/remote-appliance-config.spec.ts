import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from './config-error.js';
import { parseCloneTls, parseCloneUrl } from './remote-appliance-config.js';

test('a clone endpoint is https://host:port and nothing else', () => {
  assert.equal(parseCloneUrl('appliances[0].clone', 'https://hsm-a1:5697'), 'https://hsm-a1:5697');
  assert.equal(parseCloneUrl('appliances[0].clone', undefined), undefined);
  for (const bad of ['http://hsm-a1:5697', 'https://hsm-a1', 'https://hsm-a1:5697/v1', 'https://u:p@hsm-a1:5697', 'hsm-a1:5697', 42]) {
    assert.throws(() => parseCloneUrl('appliances[0].clone', bad), (error: unknown) => error instanceof ConfigError && error.message.startsWith('appliances[0].clone:'));
  }
});

test('cloneTls is required once an appliance has a clone endpoint, and names the bad field', () => {
  assert.throws(() => parseCloneTls(undefined, true), /cloneTls: .*ca, cert, key/);
  assert.equal(parseCloneTls(undefined, false), undefined);
  assert.deepEqual(parseCloneTls({ ca: '/a', cert: '/b', key: '/c' }, true), { caFile: '/a', certFile: '/b', keyFile: '/c' });
  assert.throws(() => parseCloneTls({ ca: '/a', cert: 'relative', key: '/c' }, true), /cloneTls\.cert: "relative"/);
  assert.throws(() => parseCloneTls({ ca: '/a', cert: '/b', key: '/c', pin: 'x' }, true), /cloneTls\.pin: .*unknown setting/);
});
