import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temporary directory, removed when disposed (`await using dir = temporaryDirectory()`). */
export interface TemporaryDirectory extends AsyncDisposable {
  readonly path: string;
  /** `join(path, name)`. */
  file(name: string): string;
}

/** Makes a {@link TemporaryDirectory}. */
export function temporaryDirectory(prefix = 'hsmb-e2e-files-'): TemporaryDirectory {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    file: (name) => join(path, name),
    [Symbol.asyncDispose]: () => {
      rmSync(path, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}
