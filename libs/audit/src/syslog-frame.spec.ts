import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditChain } from './audit-chain.js';
import { OctetCountedReader, octetCountedFrame, parseSyslogMessage, syslogMessage } from './syslog-frame.js';

test('an audit entry becomes an RFC 5424 message in an octet-counted frame, and reads back', () => {
  const { entry, line } = new AuditChain().link({
    type: 'call', time: '2026-12-02T03:00:00.000Z', identity: 'spiffe://corp/vpc-a/"x"]', peer: 'ipv4:127.0.0.1:1', operation: 'Decrypt',
    appliances: [], code: 7, reason: 'ACCESS_DENIED', latencyMs: 0.2, requestId: 'r-1',
  });
  const message = syslogMessage(entry, line, { hostname: 'broker host', appName: 'hsm-broker', procId: '42' });
  assert.match(message, /^<108>1 2026-12-02T03:00:00.000Z brokerhost hsm-broker 42 call \[hsmb@32473 seq="1" operation="Decrypt" identity="spiffe:\/\/corp\/vpc-a\/\\"x\\"\\]" code="7" requestId="r-1"\] \uFEFF\{/);
  const frame = octetCountedFrame(message);
  const reader = new OctetCountedReader();
  // Split mid-length and mid-body, as TCP may.
  assert.deepEqual(reader.push(frame.subarray(0, 2)), []);
  const frames = [...reader.push(Buffer.concat([frame.subarray(2, 50)])), ...reader.push(Buffer.concat([frame.subarray(50), frame]))];
  assert.equal(frames.length, 2);
  const parsed = parseSyslogMessage(frames[0] ?? '');
  assert.equal(parsed?.pri, 108);
  assert.equal(parsed?.msgId, 'call');
  assert.equal(parsed?.msg, line);
  assert.throws(() => new OctetCountedReader().push(Buffer.from('<13>1 not framed')), /MSG-LEN/);
});
