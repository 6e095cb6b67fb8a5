// Small facts about the host that every setup script asks: is a command on
// PATH, are we root. Only Node built-ins: this runs before node_modules exists.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Whether an executable called `command` is in a PATH folder.
 *
 * @param {string} command
 * @returns {boolean}
 */
export function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

/**
 * Whether this process runs as root on Linux (and so may apt-get install).
 *
 * @returns {boolean}
 */
export function isRoot() {
  return process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0;
}
