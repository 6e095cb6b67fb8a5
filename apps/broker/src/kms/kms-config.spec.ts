import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../config-error.js';
import { parseKmsSettings } from './kms-config.js';

const fail = (field: string, value: unknown, allowed: string): never => {
  throw new ConfigError(`${field}: ${JSON.stringify(value)} is not valid; ${allowed}`);
};
const section = {
  listen: '127.0.0.1:8443',
  region: 'eu-west-1',
  account: '111122223333',
  credentials: [{ accessKeyId: 'AKIAVPCAPAYMENTS', secretFile: '/etc/hsmb/kms/vpc-a.secret', identity: 'spiffe://corp/vpc-a/payments' }],
};

describe('kms: configuration', () => {
  it('is off unless kms: or HSMB_KMS_LISTEN is set', () => {
    assert.equal(parseKmsSettings(undefined, {}, '/', false, fail), undefined);
  });

  it('reads the section as the issue writes it, HSMB_KMS_LISTEN overriding listen', () => {
    assert.deepEqual(parseKmsSettings(section, {}, '/', false, fail), section);
    assert.equal(parseKmsSettings(section, { HSMB_KMS_LISTEN: '127.0.0.1:0' }, '/', false, fail)?.listen, '127.0.0.1:0');
    assert.equal(parseKmsSettings({ ...section, credentials: [{ ...section.credentials[0], secretFile: 'kms/a.secret' }] }, {}, '/srv', false, fail)?.credentials[0]?.secretFile, '/srv/kms/a.secret');
  });

  it('names the field, the value and what is allowed', () => {
    const refused = (raw: unknown, env: NodeJS.ProcessEnv = {}, tls = false): string => {
      try {
        parseKmsSettings(raw, env, '/', tls, fail);
      } catch (error: unknown) {
        assert.ok(error instanceof ConfigError);
        return error.message;
      }
      return 'accepted';
    };
    assert.match(refused({ ...section, listen: '0.0.0.0:8443' }), /^kms\.listen \(HSMB_KMS_LISTEN\): "0\.0\.0\.0:8443" .*needs TLS/);
    assert.equal(refused({ ...section, listen: '0.0.0.0:8443' }, {}, true), 'accepted');
    assert.match(refused({ ...section, region: 'Europe' }), /^kms\.region: "Europe"/);
    assert.match(refused({ ...section, account: 111122223333 }), /^kms\.account: 111122223333 .*12-digit/);
    assert.match(refused({ ...section, credentials: [] }), /^kms\.credentials: \[\]/);
    assert.match(refused({ ...section, credentials: [{ ...section.credentials[0], accessKeyId: 'short' }] }), /^kms\.credentials\[0\]\.accessKeyId: "short"/);
    assert.match(refused({ ...section, credentials: [section.credentials[0], section.credentials[0]] }), /^kms\.credentials\[1\]\.accessKeyId: .*unique/);
    assert.match(refused({ ...section, credentials: [{ ...section.credentials[0], identity: 'anonymous' }] }), /^kms\.credentials\[0\]\.identity/);
    assert.match(refused({ ...section, bogus: 1 }), /^kms\.bogus: 1 .*unknown setting/);
  });

  it('never echoes a secret written into the configuration by mistake', () => {
    const message = ((): string => {
      try {
        parseKmsSettings({ ...section, credentials: [{ ...section.credentials[0], secret: 'wJalrXUtnFEMI/K7MDENG' }] }, {}, '/', false, fail);
      } catch (error: unknown) {
        return error instanceof Error ? error.message : '';
      }
      return 'accepted';
    })();
    assert.match(message, /^kms\.credentials\[0\]\.secret: "<redacted>"/);
    assert.doesNotMatch(message, /wJalr/);
  });

  it('never shows the value of an unknown credential setting, whatever it is called', () => {
    for (const name of ['SecretAccessKey', 'secretKey', 'aws_secret_access_key']) {
      let message = 'accepted';
      try {
        parseKmsSettings({ ...section, credentials: [{ ...section.credentials[0], [name]: 'wJalrXUtnFEMI/K7MDENG' }] }, {}, '/', false, fail);
      } catch (error: unknown) {
        message = error instanceof Error ? error.message : '';
      }
      assert.match(message, new RegExp(`^kms\\.credentials\\[0\\]\\.${name}: "<redacted>"`));
      assert.doesNotMatch(message, /wJalr/);
    }
  });
});
