/** A table column: its heading and which side its cells hug. */
export interface TableColumn {
  header: string;
  /** Numbers read best right-aligned; the default is left. */
  align?: 'left' | 'right';
}

/**
 * Renders rows as a plain-text table: columns two spaces apart, each as wide
 * as its widest cell, no trailing spaces, one newline per line.
 */
export function renderTable(columns: readonly TableColumn[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((row) => columns.map((_, index) => printable(row[index] ?? '')));
  const widths = columns.map((column, index) =>
    Math.max(width(column.header), ...cells.map((row) => width(row[index] ?? ''))),
  );
  const line = (values: readonly string[]): string =>
    values
      .map((value, index) => {
        const padding = ' '.repeat((widths[index] ?? 0) - width(value));
        return columns[index]?.align === 'right' ? padding + value : value + padding;
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map(line)].join('\n') + '\n';
}

/**
 * Makes text from the broker safe to print on a terminal: control characters
 * (newlines, escape sequences) become `?`, so a crafted error message can
 * neither break the table's layout nor drive the terminal.
 */
export function printable(text: string): string {
  return Array.from(text, (char) => {
    const code = char.codePointAt(0) ?? 0;
    return code < 0x20 || (code >= 0x7f && code <= 0x9f) ? '?' : char;
  }).join('');
}

// Columns are measured in code points so that non-ASCII names (one code
// point, two UTF-16 units for astral characters) line up.
function width(text: string): number {
  return [...text].length;
}
