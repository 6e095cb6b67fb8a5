import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './broker-config.js';

describe('audit settings', () => {
  const withFile = (yaml: string, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfig> => {
    const dir = mkdtempSync(join(tmpdir(), 'hsmb-audit-config-'));
    try {
      const file = join(dir, 'broker.yaml');
      writeFileSync(file, yaml);
      return loadConfig({ HSMB_CONFIG: file, ...env }, '/srv');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const refused = (yaml: string, pattern: RegExp): void => {
    assert.throws(() => withFile(yaml), (error: unknown) => error instanceof ConfigError && pattern.test(error.message));
  };

  it('is on by default, under the data directory, with no collectors', () => {
    const { audit } = loadConfig({}, '/srv');
    assert.deepEqual(audit, {
      file: '/srv/.data/audit/audit.log',
      rotateBytes: 16 * 1024 * 1024,
      checkpointMs: 60_000,
      bufferDir: '/srv/.data/audit/syslog-buffer',
      syslog: [],
    });
  });

  it('reads the file, collectors and TLS; HSMB_AUDIT_FILE overrides the file', () => {
    const yaml = [
      'audit:',
      '  file: /var/log/hsmb/audit.log',
      '  checkpointSeconds: 30',
      '  syslog:',
      '    - address: siem.internal:6514',
      '      tls: { ca: /etc/ssl/siem-ca.pem, serverName: siem.internal }',
      '    - address: "[::1]:601"',
      '      bufferBytes: 1048576',
    ].join('\n');
    const { audit } = withFile(yaml);
    assert.equal(audit.file, '/var/log/hsmb/audit.log');
    assert.equal(audit.checkpointMs, 30_000);
    assert.equal(audit.bufferDir, '/var/log/hsmb/syslog-buffer');
    assert.deepEqual(audit.syslog[0], {
      address: 'siem.internal:6514',
      host: 'siem.internal',
      port: 6514,
      tls: { caFile: '/etc/ssl/siem-ca.pem', certFile: undefined, keyFile: undefined, serverName: 'siem.internal' },
      bufferBytes: 64 * 1024 * 1024,
    });
    assert.deepEqual([audit.syslog[1]?.host, audit.syslog[1]?.port, audit.syslog[1]?.tls, audit.syslog[1]?.bufferBytes], ['::1', 601, undefined, 1048576]);
    assert.equal(withFile(yaml, { HSMB_AUDIT_FILE: 'trail/audit.log' }).audit.file, '/srv/trail/audit.log');
  });

  it('names the field, the value and what is allowed', () => {
    refused('audit:\n  syslog:\n    - address: siem.internal\n', /^audit\.syslog\[0\]\.address: "siem\.internal" is not valid; expected host:port/);
    refused('audit:\n  syslog:\n    - address: a:1\n    - address: a:1\n', /^audit\.syslog: "a:1" is not valid; each collector address may appear once/);
    refused('audit:\n  syslog:\n    - address: a:1\n      tls: { cert: /c.pem }\n', /audit\.syslog\[0\]\.tls\.cert.*needs both cert and key/);
    refused('audit:\n  rotateBytes: 10\n', /^audit\.rotateBytes: 10 is not valid; expected an integer from 4096/);
    refused('audit:\n  colour: blue\n', /^audit\.colour: "blue" is not valid; unknown setting/);
    refused('audit: [1]\n', /^audit: \[1\] is not valid; expected a mapping/);
  });
});
