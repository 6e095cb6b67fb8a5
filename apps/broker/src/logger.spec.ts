import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, teeLogger, withCallScope } from './logger.js';

function captured(level: 'debug' | 'info' = 'debug'): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger(level, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

describe('logger', () => {
  it('writes one JSON object a line with time, level word, message and fields', () => {
    const { lines, log } = captured();
    log.warn('appliance breaker changed state', { appliance: 'hsm-a1', state: 'open' });
    assert.equal(lines.length, 1);
    const [line] = lines;
    assert.equal(line?.['level'], 'warn');
    assert.equal(line?.['message'], 'appliance breaker changed state');
    assert.equal(line?.['appliance'], 'hsm-a1');
    assert.match(String(line?.['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('drops lines below its level', () => {
    const { lines, log } = captured('info');
    log.debug('noise');
    log.info('kept');
    assert.deepEqual(lines.map((line) => line['message']), ['kept']);
  });

  it('censors secret-named fields at the top level and one level down', () => {
    const { lines, log } = captured();
    log.info('x', { plaintext: 'attack at dawn', pin: '1234', appliance: { userPin: '5678', soPin: '9999', id: 'hsm-a1' } });
    const text = JSON.stringify(lines);
    for (const secret of ['attack at dawn', '1234', '5678', '9999']) assert.ok(!text.includes(secret), `${secret} was written`);
    assert.equal((lines[0]?.['appliance'] as Record<string, unknown>)['id'], 'hsm-a1');
  });

  it('every line logged inside a call carries its request id and method, however deep; none outside', async () => {
    const { lines, log } = captured();
    await withCallScope({ requestId: 'req-7', method: 'Encrypt' }, async () => {
      log.info('before await');
      await new Promise((resolve) => setTimeout(resolve, 5));
      log.info('after a timer');
    });
    log.info('outside');
    assert.deepEqual(
      lines.map((line) => [line['message'], line['requestId'], line['method']]),
      [
        ['before await', 'req-7', 'Encrypt'],
        ['after a timer', 'req-7', 'Encrypt'],
        ['outside', undefined, undefined],
      ],
    );
  });

  it('tee sends each line to every logger at its own level', () => {
    const quiet = captured('info');
    const full = captured('debug');
    const log = teeLogger(quiet.log, full.log);
    log.debug('d');
    log.error('e');
    assert.equal(quiet.lines.length, 1);
    assert.equal(full.lines.length, 2);
  });
});
