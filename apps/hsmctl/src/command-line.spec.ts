import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeBase64,
  parseCommandLine,
  parseDecimal,
  parseInteger,
  parseKeyValueList,
  resolveCommandPath,
  UsageError,
} from './command-line.js';

function usageError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => error instanceof UsageError && pattern.test(error.message);
}

describe('parseKeyValueList', () => {
  it('reads key=value pairs, splitting at the first =', () => {
    assert.deepEqual(parseKeyValueList(['tenant=acme', 'query=a=b', 'empty='], '--context'), {
      tenant: 'acme',
      query: 'a=b',
      empty: '',
    });
  });

  it('returns an empty map for no entries', () => {
    assert.deepEqual(parseKeyValueList([], '--context'), {});
  });

  it('rejects an entry without =, naming the flag and the entry', () => {
    assert.throws(
      () => parseKeyValueList(['tenant'], '--context'),
      usageError(/^--context: expected KEY=VALUE, got 'tenant'$/),
    );
  });

  it('rejects an empty key', () => {
    assert.throws(() => parseKeyValueList(['=x'], '--label'), usageError(/^--label: empty key in '=x'$/));
  });

  it('rejects a key given twice instead of silently keeping one', () => {
    assert.throws(
      () => parseKeyValueList(['a=1', 'a=2'], '--context'),
      usageError(/key 'a' given twice/),
    );
  });

  it('rejects __proto__, which a plain object cannot hold as an entry', () => {
    assert.throws(() => parseKeyValueList(['__proto__=x'], '--context'), usageError(/__proto__/));
  });
});

describe('parseDecimal', () => {
  it('accepts plain decimals within bounds', () => {
    const bounds = { min: 0, max: 1 };
    assert.equal(parseDecimal('0', '--probability', bounds), 0);
    assert.equal(parseDecimal('1', '--probability', bounds), 1);
    assert.equal(parseDecimal('0.25', '--probability', bounds), 0.25);
    assert.equal(parseDecimal('.5', '--probability', bounds), 0.5);
    assert.equal(parseDecimal(' 1.0 ', '--probability', bounds), 1);
  });

  it('rejects out-of-range values and anything but plain decimals', () => {
    for (const input of ['1.01', '-0.5', '', '.', 'abc', '1e-1', '0x1', 'Infinity', 'NaN', '0,5']) {
      assert.throws(
        () => parseDecimal(input, '--probability', { min: 0, max: 1 }),
        usageError(/^--probability: expected a number from 0 to 1, got '/),
        input,
      );
    }
  });
});

describe('parseInteger', () => {
  it('accepts integers within bounds', () => {
    assert.equal(parseInteger('7', '--days', { min: 7, max: 30 }), 7);
    assert.equal(parseInteger(' 30 ', '--days', { min: 7, max: 30 }), 30);
  });

  it('rejects out-of-range, fractional and non-numeric input with the allowed range', () => {
    for (const input of ['6', '31', '7.5', 'ten', '', '1e3', '0x10']) {
      assert.throws(
        () => parseInteger(input, '--days', { min: 7, max: 30 }),
        usageError(/^--days: expected an integer from 7 to 30, got /),
        input,
      );
    }
    assert.throws(() => parseInteger('0', '--deadline-ms', { min: 1 }), usageError(/an integer >= 1/));
  });
});

describe('decodeBase64', () => {
  it('decodes standard and URL-safe base64, padded or not', () => {
    assert.deepEqual(decodeBase64('+/8=', '--mac'), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(decodeBase64('-_8', '--mac'), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(decodeBase64('aGVs\nbG8=', '--mac'), Buffer.from('hello'));
    assert.equal(decodeBase64('', '--mac').length, 0);
  });

  it('rejects characters Buffer.from would silently skip', () => {
    for (const input of ['abc!', 'ab cd*', 'a', '+-/_', 'ab=c']) {
      assert.throws(() => decodeBase64(input, '--signature'), usageError(/^--signature: not valid base64$/), input);
    }
  });
});

describe('resolveCommandPath', () => {
  const paths = [['keys', 'create'], ['keys', 'describe'], ['encrypt'], ['fleet', 'status']];
  const globals = new Set(['--address']);

  it('finds the command words and keeps everything else in order', () => {
    assert.deepEqual(resolveCommandPath(['keys', 'create', '--spec', 'AES_256'], paths, globals), {
      words: ['keys', 'create'],
      rest: ['--spec', 'AES_256'],
    });
  });

  it('skips global options and their values before the command', () => {
    assert.deepEqual(resolveCommandPath(['--address', 'keys', 'fleet', 'status'], paths, globals), {
      words: ['fleet', 'status'],
      rest: ['--address', 'keys'],
    });
  });

  it('treats words after a complete command as its arguments', () => {
    assert.deepEqual(resolveCommandPath(['keys', 'describe', 'encrypt'], paths, globals), {
      words: ['keys', 'describe'],
      rest: ['encrypt'],
    });
  });

  it('reports the first word that matches no command', () => {
    const resolved = resolveCommandPath(['keys', 'frobnicate', 'x'], paths, globals);
    assert.deepEqual(resolved.words, ['keys']);
    assert.equal(resolved.unknownWord, 'frobnicate');
  });

  it('stops looking for command words after --', () => {
    const resolved = resolveCommandPath(['--', 'encrypt'], paths, globals);
    assert.deepEqual(resolved.words, []);
    assert.deepEqual(resolved.rest, ['--', 'encrypt']);
  });
});

describe('parseCommandLine', () => {
  const options = {
    spec: { type: 'string', description: '' },
    all: { type: 'boolean', description: '' },
    label: { type: 'string', multiple: true, description: '' },
  } as const;

  it('parses values, flags, repeated options and positionals', () => {
    const parsed = parseCommandLine(['--spec', 'AES_256', '--all', '--label', 'a=1', '--label=b=2', 'k1'], options);
    assert.equal(parsed.options.string('spec'), 'AES_256');
    assert.equal(parsed.options.flag('all'), true);
    assert.deepEqual(parsed.options.list('label'), ['a=1', 'b=2']);
    assert.deepEqual(parsed.positionals, ['k1']);
    assert.equal(parsed.options.has('missing'), false);
  });

  it('turns parseArgs errors into short usage errors', () => {
    assert.throws(() => parseCommandLine(['--bogus'], options), usageError(/^unknown option '--bogus'$/));
    assert.throws(() => parseCommandLine(['--spec'], options), usageError(/^option '--spec' needs a value$/));
    assert.throws(() => parseCommandLine(['--all=yes'], options), usageError(/^option '--all' takes no value$/));
    assert.throws(
      () => parseCommandLine(['--spec', '-x'], options),
      usageError(/needs a value; to pass one that starts with '-', write --spec=VALUE/),
    );
  });

  it('marks shape errors so that the usage is shown', () => {
    assert.throws(
      () => parseCommandLine(['--bogus'], options),
      (error: unknown) => error instanceof UsageError && error.showUsage,
    );
  });

  it('checks required and integer options', () => {
    const parsed = parseCommandLine(['--spec', '12'], options);
    assert.equal(parsed.options.requiredInteger('spec', { min: 1 }), 12);
    assert.throws(() => parsed.options.requiredString('missing'), usageError(/^missing required option --missing$/));
    assert.equal(parsed.options.integer('missing', { min: 1 }), undefined);
  });
});
