import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { formatSyslog } from './syslog-sender.js';

test('events are RFC 5424: priority, version, timestamp, host, app, procid, msgid, structured data, message', () => {
  const line = formatSyslog('crit', 'ZEROIZED', 'zeroize: wiping token hsm-a1', { appliance: 'hsm-a1', note: 'a "quoted" ]value\\' }, new Date('2026-12-02T03:00:00.000Z'));
  // facility 4 (auth) * 8 + severity 2 (crit) = 34
  assert.equal(
    line,
    `<34>1 2026-12-02T03:00:00.000Z ${hostname()} hsm-node ${String(process.pid)} ZEROIZED [hsmnode@32473 appliance="hsm-a1" note="a \\"quoted\\" \\]value\\\\"] zeroize: wiping token hsm-a1`,
  );
});

test('an event without fields has a nil structured-data element', () => {
  assert.match(formatSyslog('info', 'NODE_READY', 'ready', {}), / NODE_READY - ready$/);
});
