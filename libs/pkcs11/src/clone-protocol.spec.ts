import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCloneJson, encodeCloneJson } from './clone-protocol.js';

test('clone JSON carries Buffers as base64 and back, nested', () => {
  const value = { key: { wrapped: Buffer.from([0, 1, 2, 255]), publicKeySpki: Buffer.alloc(0) }, label: 'hsmb:k:1', n: 3 };
  const text = encodeCloneJson(value);
  assert.match(text, /"\$base64":"AAEC\/w=="/);
  assert.deepEqual(decodeCloneJson(text), value);
});

test('an object that only looks like an encoded Buffer but has other keys stays an object', () => {
  assert.deepEqual(decodeCloneJson('{"a":{"$base64":"AA==","x":1}}'), { a: { $base64: 'AA==', x: 1 } });
});
