import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '@hsm-broker/errors';
import { lookupCkr, translateCkr } from './ckr-table.js';

describe('CKR table', () => {
  it('treats device and session failures as appliance faults', () => {
    for (const ckr of [0x30, 0x32, 0xe0, 0xb0, 0xb3, 0x06, 0x90, 0x80000001]) {
      const entry = lookupCkr(ckr, 'C_Sign');
      assert.equal(entry.failureClass, 'appliance', entry.name);
      assert.equal(entry.code, Code.UNAVAILABLE);
    }
  });

  it('treats bad input as the caller\'s error, never the appliance\'s', () => {
    for (const ckr of [0x07, 0x20, 0x21, 0x40, 0x70, 0x71, 0xc0, 0xc1]) {
      assert.equal(lookupCkr(ckr, 'C_Sign').failureClass, 'caller', lookupCkr(ckr).name);
    }
  });

  it('reads a failed GCM tag check in C_Decrypt as a caller error', () => {
    assert.equal(lookupCkr(0x05, 'C_Decrypt').failureClass, 'caller');
    assert.equal(lookupCkr(0x05, 'C_Sign').failureClass, 'appliance');
  });

  it('keeps the name, number and function in the error', () => {
    const error = translateCkr(0x30, 'C_Sign');
    assert.equal(error.reason, 'CKR_DEVICE_ERROR');
    assert.equal(error.details['ckr'], 0x30);
    assert.equal(error.details['function'], 'C_Sign');
    assert.equal(error.retryable, true);
    assert.match(error.message, /C_Sign failed with CKR_DEVICE_ERROR/);
  });

  it('names vendor codes', () => {
    assert.equal(lookupCkr(0x80000010).name, 'CKR_VENDOR_DEFINED+0x10');
  });
});
