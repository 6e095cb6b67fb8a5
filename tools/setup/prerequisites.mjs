// Makes sure a checkout can build, test and run: Debian packages first (SoftHSM
// and, if missing, the compilers that native npm modules need), then
// node_modules. Shared by `npm test` and `npm start`.
//
// Only Node built-ins here: this runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, onPath } from './host-commands.mjs';

/** The repository root (this file lives in tools/setup/). */
export const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The PKCS#11 module that local runs and tests load. */
export const softHsmModule = '/usr/lib/softhsm/libsofthsm2.so';

/** A prerequisite that is missing and could not be installed. */
export class PrerequisiteError extends Error {
  /** @param {string} message what is missing and how to get it */
  constructor(message) {
    super(message);
    this.name = 'PrerequisiteError';
  }
}

/**
 * Debian packages the project needs, each with the file that proves it is
 * installed. `onlyForNativeBuild` ones matter only while npm compiles native
 * addons (pkcs11js, better-sqlite3), so they are checked only then.
 */
const debianPackages = [
  { pkg: 'softhsm2', present: () => existsSync(softHsmModule) },
  { pkg: 'opensc', present: () => onPath('pkcs11-tool') },
  // Tests check signatures and make test certificates with the openssl CLI.
  { pkg: 'openssl', present: () => onPath('openssl') },
  { pkg: 'python3', present: () => onPath('python3'), onlyForNativeBuild: true },
  { pkg: 'make', present: () => onPath('make'), onlyForNativeBuild: true },
  { pkg: 'g++', present: () => onPath('g++'), onlyForNativeBuild: true },
  // The dashboard test drives Debian's Chromium headless (playwright-core
  // brings no browser); a font so the screenshot has readable text.
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium'), onlyForTests: true },
  { pkg: 'fonts-dejavu-core', present: () => existsSync('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'), onlyForTests: true },
  // h2load, the unary load generator of `npm run bench` and of its smoke test.
  { pkg: 'nghttp2-client', present: () => onPath('h2load'), onlyForTests: true },
];

/**
 * Installs what is missing, or throws a {@link PrerequisiteError} that says
 * exactly what to install when this process may not do it (not root).
 * `forTests` adds what only the test suites need (Chromium, h2load).
 *
 * @param {{ log?: (line: string) => void, forTests?: boolean }} [options]
 */
export function ensurePrerequisites({ log = (line) => console.log(line), forTests = false } = {}) {
  const nodeModulesState = inspectNodeModules();
  const needed = debianPackages
    .filter((entry) => !entry.onlyForNativeBuild || nodeModulesState !== 'ok')
    .filter((entry) => !entry.onlyForTests || forTests)
    .filter((entry) => !entry.present())
    .map((entry) => entry.pkg);
  if (needed.length > 0) installDebianPackages(needed, log);
  else log(`prerequisites: SoftHSM (${softHsmModule}) and pkcs11-tool present`);

  if (nodeModulesState === 'ok') {
    log('prerequisites: node_modules matches package-lock.json');
  } else {
    installNodeModules(nodeModulesState, log);
  }
}

function installDebianPackages(packages, log) {
  const command = `apt-get install -y ${packages.join(' ')}`;
  if (!isRoot()) {
    throw new PrerequisiteError(
      `missing Debian package(s): ${packages.join(', ')}.\n` +
        `Install them, then run this again:\n` +
        `  sudo apt-get update && sudo ${command}\n` +
        `(SoftHSM must provide ${softHsmModule}; opensc provides pkcs11-tool.)`,
    );
  }
  if (!onPath('apt-get')) {
    throw new PrerequisiteError(
      `missing package(s) ${packages.join(', ')} and no apt-get here: install SoftHSM 2 ` +
        `(${softHsmModule}), OpenSC's pkcs11-tool, python3, make and g++ by hand.`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`prerequisites: installing ${packages.join(' ')} with apt-get`);
  run('apt-get', ['update'], { env });
  run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env });
  const stillMissing = debianPackages.filter((e) => packages.includes(e.pkg) && !e.present());
  if (stillMissing.length > 0) {
    throw new PrerequisiteError(
      `apt-get installed ${packages.join(' ')} but ${stillMissing.map((e) => e.pkg).join(', ')} ` +
        `still looks missing (expected ${softHsmModule} and pkcs11-tool).`,
    );
  }
}

/**
 * 'ok' when node_modules holds every package of package-lock.json at its
 * locked version; 'missing' or 'stale' otherwise. npm keeps a copy of what it
 * installed in node_modules/.package-lock.json, so this costs one JSON read.
 *
 * @returns {'ok' | 'missing' | 'stale'}
 */
function inspectNodeModules() {
  const nodeModules = join(workspaceRoot, 'node_modules');
  if (!existsSync(nodeModules)) return 'missing';
  const lockPath = join(workspaceRoot, 'package-lock.json');
  const installedPath = join(nodeModules, '.package-lock.json');
  if (!existsSync(lockPath)) return existsSync(join(nodeModules, '.bin', 'nx')) ? 'ok' : 'missing';
  if (!existsSync(installedPath)) return 'stale';
  try {
    const locked = JSON.parse(readFileSync(lockPath, 'utf8')).packages ?? {};
    const installed = JSON.parse(readFileSync(installedPath, 'utf8')).packages ?? {};
    for (const [path, entry] of Object.entries(locked)) {
      // '' is the root; optional packages for other platforms are never installed.
      if (path === '' || entry.optional) continue;
      if (!installed[path] || installed[path].version !== entry.version) return 'stale';
    }
    return 'ok';
  } catch {
    return 'stale';
  }
}

function installNodeModules(state, log) {
  const hasLock = existsSync(join(workspaceRoot, 'package-lock.json'));
  const args = hasLock ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  log(`prerequisites: node_modules ${state}; running npm ${args.join(' ')}`);
  // `npm --silent test` would otherwise hide install errors too.
  const env = { ...process.env };
  delete env.npm_config_loglevel;
  run(npmCommand(), args, { cwd: workspaceRoot, env });
}

function npmCommand() {
  return process.platform === 'win32' ? 'npm.cmd' : 'npm';
}

function run(command, args, { cwd = workspaceRoot, env = process.env } = {}) {
  const result = spawnSync(command, args, { cwd, env, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.error) throw new PrerequisiteError(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.status}`;
    throw new PrerequisiteError(`${command} ${args.join(' ')} ${how}`);
  }
}
