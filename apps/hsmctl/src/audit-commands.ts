import { readFile } from 'node:fs/promises';
import { verifyAuditTrail } from '@hsm-broker/audit';
import { AuditRecord, AuditResult, GetAuditStatusResponse, type AuditFilter } from '@hsm-broker/client';
import { BrokerError, Code } from '@hsm-broker/errors';
import { renderAuditLine, renderAuditRecords, renderAuditStatus, renderVerification } from './audit-view.js';
import { UsageError, type OptionSpecs, type ParsedOptions } from './command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from './command.js';
import { encodeJson, encodeText, outputOption, reportFormats, resolveOutputTarget, writeOutput } from './output-format.js';

const reportOutput = { output: outputOption(reportFormats, 'text') };

function reportFormat(context: CommandContext): 'text' | 'json' {
  return resolveOutputTarget(context.options, reportFormats, 'text', false).format === 'json' ? 'json' : 'text';
}

const filterOptions: OptionSpecs = {
  identity: { type: 'string', valueName: 'ID', description: 'Only calls by this identity (exact)' },
  operation: { type: 'string', valueName: 'RPC', description: 'Only this RPC method, e.g. Decrypt' },
  'key-id': { type: 'string', valueName: 'KEY', description: 'Only calls on this key' },
  result: { type: 'string', valueName: 'RESULT', description: 'ok, denied (UNAUTHENTICATED, PERMISSION_DENIED) or failed (anything but OK)' },
};

const results: Record<string, AuditResult> = { ok: AuditResult.OK, denied: AuditResult.DENIED, failed: AuditResult.FAILED };

function readFilter(options: ParsedOptions): AuditFilter {
  const result = options.string('result');
  if (result !== undefined && results[result] === undefined) throw new UsageError(`--result: '${result}' is not one of ok, denied, failed`);
  return {
    identity: options.string('identity') ?? '',
    operation: options.string('operation') ?? '',
    keyId: options.string('key-id') ?? '',
    result: result === undefined ? AuditResult.UNSPECIFIED : (results[result] ?? AuditResult.UNSPECIFIED),
  };
}

function readTime(options: ParsedOptions, name: string): Date | undefined {
  const value = options.string(name);
  if (value === undefined) return undefined;
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new UsageError(`--${name}: '${value}' is not an ISO 8601 time such as 2026-12-02T03:00:00Z`);
  return time;
}

/** JSON Lines: each record as the trail holds it, so output can be piped into `audit verify`-aware tools. */
function jsonLines(records: readonly AuditRecord[]): Buffer {
  return encodeText(records.map((record) => `${record.json}\n`).join(''));
}

const searchCommand: CommandSpec = {
  path: ['audit', 'search'],
  synopsis: '[--identity ID] [--operation RPC] [--key-id KEY] [--result ok|denied|failed] [--since TIME] [--until TIME] [--limit N] [--output text|json]',
  summary: 'Search the audit trail (auditor role)',
  description:
    'Prints the newest matching records, oldest first: at most --limit (1 to 1000, default 100). ' +
    '--output json prints each record as the trail holds it, one JSON object per line.',
  options: {
    ...filterOptions,
    since: { type: 'string', valueName: 'TIME', description: 'Only records at or after this ISO 8601 time' },
    until: { type: 'string', valueName: 'TIME', description: 'Only records before this ISO 8601 time' },
    limit: { type: 'string', valueName: 'N', description: 'Most records to print, 1 to 1000 (default: 100)' },
    ...reportOutput,
  },
  async run(context) {
    const { options } = context;
    const format = reportFormat(context);
    const startTime = readTime(options, 'since');
    const endTime = readTime(options, 'until');
    const response = await context.client().searchAudit({
      filter: readFilter(options),
      limit: options.integer('limit', { min: 1, max: 1000 }) ?? 0,
      ...(startTime === undefined ? {} : { startTime }),
      ...(endTime === undefined ? {} : { endTime }),
    });
    await writeOutput(context.io.stdout, undefined, format === 'json' ? jsonLines(response.records) : encodeText(renderAuditRecords(response.records, response.truncated)));
    return ExitCode.ok;
  },
};

const tailCommand: CommandSpec = {
  path: ['audit', 'tail'],
  synopsis: '[--backlog N] [--count N] [--identity ID] [--operation RPC] [--key-id KEY] [--result ok|denied|failed] [--output text|json]',
  summary: 'Follow the audit trail as calls happen (auditor role)',
  description: 'Prints the --backlog most recent matching records (default 10), then new ones as they are written, until interrupted or --count records were printed.',
  options: {
    ...filterOptions,
    backlog: { type: 'string', valueName: 'N', description: 'Recent records to print first, 0 to 1000 (default: 10)' },
    count: { type: 'string', valueName: 'N', description: 'Stop after printing N records' },
    ...reportOutput,
  },
  async run(context) {
    const { options, io } = context;
    const format = reportFormat(context);
    const count = options.integer('count', { min: 1 });
    const stop = new AbortController();
    const interrupt = (): void => stop.abort();
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    let printed = 0;
    try {
      await context.client().tailAudit(
        { filter: readFilter(options), backlog: options.integer('backlog', { min: 0, max: 1000 }) ?? 10 },
        (record) => {
          if (stop.signal.aborted) return;
          io.stdout.write(format === 'json' ? `${record.json}\n` : renderAuditLine(record));
          printed++;
          if (count !== undefined && printed >= count) stop.abort();
        },
        { signal: stop.signal },
      );
    } catch (error: unknown) {
      // Ending the tail on purpose (Ctrl-C, --count) is success.
      if (!(stop.signal.aborted && error instanceof BrokerError && error.code === Code.CANCELLED)) throw error;
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
    }
    return ExitCode.ok;
  },
};

const statusCommand: CommandSpec = {
  path: ['audit', 'status'],
  synopsis: '[--output text|json]',
  summary: 'Show where the audit trail is written, its signing key and syslog forwarding',
  description: 'Collectors that are unreachable show the bytes buffered on disk for them and the records dropped once the buffer was full.',
  options: reportOutput,
  async run(context) {
    const format = reportFormat(context);
    const status = await context.client().getAuditStatus();
    await writeOutput(context.io.stdout, undefined, format === 'json' ? encodeJson(GetAuditStatusResponse.toJSON(status)) : encodeText(renderAuditStatus(status)));
    return ExitCode.ok;
  },
};

const verifyCommand: CommandSpec = {
  path: ['audit', 'verify'],
  synopsis: 'FILE... [--key-fingerprint HEX] [--output text|json]',
  summary: 'Check audit trail files for changed, removed, inserted or reordered records',
  description:
    'Give the active file and its rotated files (FILE.<seq>) in any order: they are checked as one chain. ' +
    'Reports each changed, removed, inserted or reordered record with its file and line, a truncated tail, ' +
    'and checkpoints whose signature fails or that another key signed. Without --key-fingerprint the first ' +
    "checkpoint's key is pinned; give the fingerprint from `hsmctl audit status` to pin it yourself. " +
    'Runs offline: no broker is contacted. Exits 3 when a problem is found.',
  positionals: ['FILE'],
  repeatsLastPositional: true,
  options: {
    'key-fingerprint': { type: 'string', valueName: 'HEX', description: 'SHA-256 of the signing key (64 hex digits) every checkpoint must carry' },
    ...reportOutput,
  },
  async run(context) {
    const format = reportFormat(context);
    const fingerprint = context.options.string('key-fingerprint');
    if (fingerprint !== undefined && !/^[0-9a-fA-F]{64}$/.test(fingerprint)) throw new UsageError('--key-fingerprint: expected 64 hex digits');
    const files = await Promise.all(
      context.positionals.map(async (name) => {
        try {
          return { name, content: await readFile(name, 'utf8') };
        } catch (error: unknown) {
          throw new BrokerError(Code.INVALID_ARGUMENT, `FILE: cannot read '${name}' (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { reason: 'INPUT_UNREADABLE', cause: error });
        }
      }),
    );
    const result = verifyAuditTrail(files, fingerprint === undefined ? {} : { keyFingerprint: fingerprint });
    await writeOutput(context.io.stdout, undefined, format === 'json' ? encodeJson(result) : encodeText(renderVerification(result)));
    return result.ok ? ExitCode.ok : ExitCode.verificationFailed;
  },
};

/** `hsmctl audit ...`. */
export const auditCommands: readonly CommandSpec[] = [searchCommand, tailCommand, statusCommand, verifyCommand];
