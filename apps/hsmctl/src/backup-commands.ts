import { createHash } from 'node:crypto';
import { BackupSummary, type BackupResult } from '@hsm-broker/client';
import { AtomicFile } from './atomic-file.js';
import { renderBackupCreated, renderBackupRestored } from './backup-view.js';
import { UsageError } from './command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from './command.js';
import { readInputFile } from './data-input.js';
import {
  encodeJson,
  encodeText,
  outputOption,
  reportFormats,
  resolveOutputTarget,
  writeOutput,
} from './output-format.js';
import { ProgressLine } from './progress-line.js';

const reportOutput = { output: outputOption(reportFormats, 'text') };

function reportFormat(context: CommandContext): 'text' | 'json' {
  return resolveOutputTarget(context.options, reportFormats, 'text', false).format === 'json' ? 'json' : 'text';
}

const backupCreateCommand: CommandSpec = {
  path: ['backup', 'create'],
  synopsis: '--out FILE [--force] [--output text|json]',
  summary: 'Back up every key version to a file',
  description:
    'Every key version is wrapped, inside an HSM, under the backup key: no key is in the clear outside ' +
    'an HSM, in the file or on the way. The file is written with mode 0600 under a temporary name and ' +
    "renamed only once it is complete and its SHA-256 matches the broker's, so FILE is either the whole " +
    'backup or absent. An existing FILE is refused unless --force. Progress goes to stderr. The call may ' +
    'take up to 10 minutes (--deadline-ms sets another limit).',
  options: {
    out: { type: 'string', valueName: 'FILE', description: 'Where to write the backup (required; mode 0600)' },
    force: { type: 'boolean', description: 'Replace FILE if it exists' },
    ...reportOutput,
  },
  async run(context) {
    const { options, io } = context;
    const path = options.requiredString('out');
    // Stdout can be neither renamed into place nor taken back when the digest is wrong.
    if (path === '-') throw new UsageError('--out: a backup is written to a file, not to stdout');
    const format = reportFormat(context);
    const file = await AtomicFile.create(path, { overwrite: options.flag('force'), flag: '--out' });
    const progress = new ProgressLine(io.stderr, 'Backup');
    let created: BackupResult;
    try {
      created = await context.client().createBackup({ onProgress: (event) => progress.update(event) });
      progress.finish();
      await file.commit(created.backup);
    } catch (error: unknown) {
      progress.finish();
      await file.discard();
      throw error;
    }
    const { backup, summary } = created;
    await writeOutput(
      io.stdout,
      undefined,
      format === 'json'
        ? encodeJson({ file: path, bytes: backup.length, ...(BackupSummary.toJSON(summary) as object) })
        : encodeText(renderBackupCreated(path, backup.length, summary)),
    );
    return ExitCode.ok;
  },
};

const backupRestoreCommand: CommandSpec = {
  path: ['backup', 'restore'],
  synopsis: 'FILE [--output text|json]',
  summary: 'Restore a backup into a fleet that holds none of its keys',
  description:
    "The broker checks the whole file (format, digest, the backup HSM's seal) and that none of its keys " +
    'exists before it changes anything: a damaged or truncated file is refused with INVALID_ARGUMENT, a ' +
    'fleet that already holds one of its keys with ALREADY_EXISTS. The restored keys are then copied to ' +
    'every enrolled appliance. Progress goes to stderr. The call may take up to 10 minutes ' +
    '(--deadline-ms sets another limit).',
  positionals: ['FILE'],
  options: reportOutput,
  async run(context) {
    const { io } = context;
    const path = context.positionals[0] ?? '';
    const format = reportFormat(context);
    const backup = await readInputFile(path, 'FILE');
    const sha256 = createHash('sha256').update(backup).digest('hex');
    const progress = new ProgressLine(io.stderr, 'Restore');
    let summary: BackupSummary;
    try {
      summary = await context.client().restoreBackup(backup, { onProgress: (event) => progress.update(event) });
    } finally {
      progress.finish();
    }
    await writeOutput(
      io.stdout,
      undefined,
      format === 'json'
        ? encodeJson({ file: path, ...(BackupSummary.toJSON(summary) as object) })
        : encodeText(renderBackupRestored(path, sha256, summary)),
    );
    return ExitCode.ok;
  },
};

/** `backup create` and `backup restore`. */
export const backupCommands: readonly CommandSpec[] = [backupCreateCommand, backupRestoreCommand];
