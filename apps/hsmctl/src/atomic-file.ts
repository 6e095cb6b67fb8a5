import { randomBytes } from 'node:crypto';
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BrokerError, Code } from '@hsm-broker/errors';

/** Filesystems that cannot make hard links say so with one of these. */
const noHardLinks = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * A file that appears whole or not at all. The bytes go to a temporary file
 * beside the target (same directory, so the final rename stays on one
 * filesystem and is atomic), created with mode 0600 and flushed to disk
 * before it takes the target's name. A reader never sees half a file, and a
 * failure leaves nothing behind.
 *
 * The temporary file is made by {@link AtomicFile.create}, before the slow
 * part of a command, so that an unwritable directory is reported at once
 * rather than after a ten-minute backup.
 */
export class AtomicFile {
  readonly #path: string;
  readonly #temporaryPath: string;
  readonly #overwrite: boolean;
  readonly #flag: string;
  #handle: FileHandle | undefined;

  private constructor(path: string, temporaryPath: string, handle: FileHandle, overwrite: boolean, flag: string) {
    this.#path = path;
    this.#temporaryPath = temporaryPath;
    this.#handle = handle;
    this.#overwrite = overwrite;
    this.#flag = flag;
  }

  /**
   * Prepares to write `path`. Unless `overwrite`, an existing file is refused
   * with ALREADY_EXISTS (reason `OUTPUT_EXISTS`); a directory that cannot be
   * written with INVALID_ARGUMENT (`OUTPUT_UNWRITABLE`). `flag` names the
   * option in messages.
   */
  static async create(path: string, options: { overwrite: boolean; flag: string }): Promise<AtomicFile> {
    if (!options.overwrite && (await exists(path))) throw alreadyExists(path, options.flag);
    const temporaryPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      // 'wx': never follow or reuse something already at the temporary name.
      const handle = await open(temporaryPath, 'wx', 0o600);
      return new AtomicFile(path, temporaryPath, handle, options.overwrite, options.flag);
    } catch (error: unknown) {
      throw unwritable(path, options.flag, error);
    }
  }

  /** Writes `bytes`, flushes them to disk and gives the file its name. */
  async commit(bytes: Uint8Array): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) throw new BrokerError(Code.INTERNAL, `${this.#flag}: file already committed or discarded`);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
      await handle.close();
      this.#handle = undefined;
      if (this.#overwrite) await rename(this.#temporaryPath, this.#path);
      else await this.#linkWithoutReplacing();
    } catch (error: unknown) {
      await this.discard();
      throw error instanceof BrokerError ? error : unwritable(this.#path, this.#flag, error);
    }
    await syncDirectory(dirname(this.#path));
  }

  /** Removes the temporary file; the target is left as it was. Safe to call twice. */
  async discard(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
    await unlink(this.#temporaryPath).catch(() => undefined);
  }

  // link() fails when the target exists, where rename() would replace it: a
  // file created by someone else while the backup ran is not overwritten.
  async #linkWithoutReplacing(): Promise<void> {
    try {
      await link(this.#temporaryPath, this.#path);
    } catch (error: unknown) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') throw alreadyExists(this.#path, this.#flag);
      if (!noHardLinks.has(code)) throw error;
      // No hard links here: check, then rename. The window between the two is small.
      if (await exists(this.#path)) throw alreadyExists(this.#path, this.#flag);
      await rename(this.#temporaryPath, this.#path);
      return;
    }
    await unlink(this.#temporaryPath);
  }
}

// Anything but "it is there" counts as absent: a directory that cannot be
// searched fails the write itself, with a better message.
async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

// Makes the new name itself durable. Not every platform can open a
// directory for this; the file's own contents are already on disk.
async function syncDirectory(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort.
  }
}

function alreadyExists(path: string, flag: string): BrokerError {
  return new BrokerError(Code.ALREADY_EXISTS, `${flag}: '${path}' already exists; give --force to replace it`, {
    reason: 'OUTPUT_EXISTS',
  });
}

function unwritable(path: string, flag: string, error: unknown): BrokerError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
  return new BrokerError(Code.INVALID_ARGUMENT, `${flag}: cannot write '${path}' (${reason})`, {
    reason: 'OUTPUT_UNWRITABLE',
    cause: error,
  });
}
