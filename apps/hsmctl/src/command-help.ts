import type { OptionSpecs } from './command-line.js';
import type { CommandSpec } from './command.js';

const lineWidth = 80;

/** `--help` for one command: synopsis, summary, description, its options, then the global ones. */
export function renderCommandHelp(command: CommandSpec, globalOptions: OptionSpecs): string {
  const sections = [
    wrapTokens(`Usage: hsmctl ${command.path.join(' ')} `, splitSynopsis(command.synopsis)),
    command.summary + '.',
  ];
  if (command.description !== undefined) sections.push(wrapWords('', command.description));
  if (Object.keys(command.options).length > 0) sections.push('Options:\n' + renderOptions(command.options));
  sections.push('Global options:\n' + renderOptions(globalOptions));
  return sections.join('\n\n') + '\n';
}

/**
 * Help for `hsmctl` itself (empty prefix) or for a group such as `hsmctl keys`:
 * the commands under it with their summaries, and the global options.
 */
export function renderGroupHelp(
  prefix: readonly string[],
  commands: readonly CommandSpec[],
  globalOptions: OptionSpecs,
): string {
  const members = commands.filter((command) => prefix.every((word, index) => command.path[index] === word));
  const names = members.map((command) => command.path.join(' '));
  const width = Math.max(...names.map((name) => name.length));
  const list = members
    .map((command, index) => wrapWords(`  ${(names[index] ?? '').padEnd(width)}  `, command.summary))
    .join('\n');
  const head = prefix.length === 0 ? 'hsmctl' : `hsmctl ${prefix.join(' ')}`;
  const sections = [`Usage: ${head} <command> [options]`];
  if (prefix.length === 0) sections.push('Operator command-line tool for hsm-broker.');
  sections.push('Commands:\n' + list, 'Global options:\n' + renderOptions(globalOptions));
  if (prefix.length === 0) {
    sections.push(
      'Commands that read data take --in FILE, --data TEXT or --data-base64 B64,\n' +
        'and read stdin otherwise. Results go to stdout, or to --out FILE; --output\n' +
        'chooses the format.\n' +
        'Enum values (AES_256, ECDSA_SHA_256, ...) are case-insensitive.',
      'Exit status: 0 success, 1 failed call or I/O error, 2 usage error,\n' +
        '3 signature or MAC invalid.',
    );
  }
  sections.push(`Run '${head === 'hsmctl' ? 'hsmctl <command>' : `${head} <command>`} --help' for a command's options.`);
  return sections.join('\n\n') + '\n';
}

function renderOptions(options: OptionSpecs): string {
  const names = Object.entries(options).map(([name, spec]) => {
    const value = spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
    const short = spec.short === undefined ? '' : `, -${spec.short}`;
    return `--${name}${value}${short}`;
  });
  const width = Math.max(...names.map((name) => name.length));
  return Object.values(options)
    .map((spec, index) => {
      const repeat = spec.multiple === true ? ' (repeatable)' : '';
      return wrapWords(`  ${(names[index] ?? '').padEnd(width)}  `, spec.description + repeat);
    })
    .join('\n');
}

// Splits a synopsis at spaces outside brackets, so that `[--in FILE | --data
// TEXT]` is never broken across lines.
function splitSynopsis(synopsis: string): string[] {
  const tokens: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of synopsis) {
    if (char === '[') depth += 1;
    if (char === ']') depth -= 1;
    if (char === ' ' && depth === 0) {
      if (current !== '') tokens.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  if (current !== '') tokens.push(current);
  return tokens;
}

function wrapWords(lead: string, text: string): string {
  return wrapTokens(lead, text.split(/\s+/).filter((word) => word !== ''));
}

// Fills lines up to lineWidth; continuation lines are indented to the lead.
function wrapTokens(lead: string, tokens: readonly string[]): string {
  const indent = ' '.repeat(Math.min(lead.length, 40));
  const lines: string[] = [];
  let line = lead;
  let lineHasToken = false;
  for (const token of tokens) {
    if (lineHasToken && line.length + 1 + token.length > lineWidth) {
      lines.push(line);
      line = indent + token;
    } else {
      line += (lineHasToken ? ' ' : '') + token;
    }
    lineHasToken = true;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}
