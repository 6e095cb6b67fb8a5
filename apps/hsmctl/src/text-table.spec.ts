import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printable, renderTable } from './text-table.js';

describe('renderTable', () => {
  it('aligns columns two spaces apart, numbers to the right, without trailing spaces', () => {
    const table = renderTable(
      [{ header: 'NAME' }, { header: 'COUNT', align: 'right' }, { header: 'NOTE' }],
      [
        ['alpha', '7', ''],
        ['b', '1234567', 'long note'],
      ],
    );
    assert.equal(
      table,
      ['NAME     COUNT  NOTE', 'alpha        7', 'b      1234567  long note', ''].join('\n'),
    );
  });

  it('prints only the header for no rows', () => {
    assert.equal(renderTable([{ header: 'A' }, { header: 'B' }], []), 'A  B\n');
  });

  it('measures width in code points, not UTF-16 units', () => {
    // U+1D538 is one narrow character but two UTF-16 units.
    const table = renderTable([{ header: 'Z' }, { header: 'N' }], [['\u{1D538}', '1'], ['ab', '2'], ['é', '3']]);
    assert.equal(table, 'Z   N\n\u{1D538}   1\nab  2\né   3\n');
  });

  it('neutralises control characters from the broker', () => {
    const table = renderTable([{ header: 'ERR' }], [['line1\nline2\u001b[31m']]);
    assert.equal(table.split('\n').length, 3);
    assert.ok(!table.includes('\u001b'));
    assert.equal(printable('a\tb\u007fc\u0085d'), 'a?b?c?d');
  });
});
