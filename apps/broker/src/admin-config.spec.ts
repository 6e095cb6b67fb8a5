import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isLoopbackListen } from './admin-config.js';
import { ConfigError, loadConfig } from './broker-config.js';

function withFile(content: Record<string, unknown>, env: Record<string, string> = {}): ReturnType<typeof loadConfig> {
  const file = join(mkdtempSync(join(tmpdir(), 'hsmb-admin-')), 'broker.yaml');
  writeFileSync(file, JSON.stringify(content));
  return loadConfig({ HSMB_CONFIG: file, ...env }, '/srv');
}

describe('admin.listen', () => {
  it('is loopback by default', () => {
    assert.deepEqual(loadConfig({}, '/srv').admin, { listen: '127.0.0.1:9464' });
  });

  it('is read from the file and overridden by HSMB_ADMIN_LISTEN', () => {
    assert.equal(withFile({ admin: { listen: '127.0.0.1:9100' } }).admin.listen, '127.0.0.1:9100');
    assert.equal(withFile({ admin: { listen: '127.0.0.1:9100' } }, { HSMB_ADMIN_LISTEN: '[::1]:9200' }).admin.listen, '[::1]:9200');
  });

  it('can be turned off', () => {
    assert.equal(loadConfig({ HSMB_ADMIN_LISTEN: 'off' }, '/srv').admin.listen, undefined);
  });

  it('names the field, the value and what is allowed when invalid', () => {
    assert.throws(() => loadConfig({ HSMB_ADMIN_LISTEN: 'localhost' }, '/srv'), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /^admin\.listen \(HSMB_ADMIN_LISTEN\): "localhost" is not valid; expected host:port/);
      return true;
    });
    assert.throws(() => loadConfig({ HSMB_ADMIN_LISTEN: '127.0.0.1:70000' }, '/srv'), /port from 0 to 65535/);
    assert.throws(() => withFile({ admin: { port: 1 } }), /admin\.port: 1 is not valid; unknown setting/);
    assert.throws(() => withFile({ admin: 'yes' }), /admin: "yes" is not valid; expected a mapping/);
  });

  it('tells loopback from other addresses', () => {
    assert.equal(isLoopbackListen('127.0.0.1:9464'), true);
    assert.equal(isLoopbackListen('[::1]:9464'), true);
    assert.equal(isLoopbackListen('localhost:9464'), true);
    assert.equal(isLoopbackListen('0.0.0.0:9464'), false);
    assert.equal(isLoopbackListen('10.0.0.5:9464'), false);
  });
});
