// Makes sure containers can run here: a Docker engine that answers, the base
// image `debian:trixie-slim`, and a compose implementation (`docker compose`
// or Debian's `docker-compose` 1.29). Shared by `npm test`, `.ci/run`, the
// README and the test harness. Idempotent: when everything is present it costs
// two `docker` calls.
//
// Only Node built-ins here: this runs before node_modules may exist.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, onPath } from '../setup/host-commands.mjs';

/** The image every Dockerfile of this repository starts from. */
export const baseImage = 'debian:trixie-slim';

/** How long a `docker pull` of the base image may take before debootstrap is used instead. */
const pullTimeoutMs = 120_000;

/** Debian's mirror when the machine's apt sources name none. */
const defaultMirror = 'http://deb.debian.org/debian';

/** A container prerequisite that is missing and could not be provided. */
export class ContainerPrerequisiteError extends Error {
  /** @param {string} message what is missing and exactly what to run */
  constructor(message) {
    super(message);
    this.name = 'ContainerPrerequisiteError';
  }
}

/**
 * Engine, base image and compose, in that order. Throws a
 * {@link ContainerPrerequisiteError} saying what to run when this process may
 * not provide something itself.
 *
 * @param {{ log?: (line: string) => void, compose?: boolean }} [options]
 * @returns {Promise<{ compose: string[] | undefined }>}
 */
export async function ensureContainerPrerequisites({ log = (line) => console.log(line), compose = true } = {}) {
  await ensureDockerEngine({ log });
  ensureContainerCpuShare({ log });
  ensureBaseImage({ log });
  return { compose: compose ? ensureCompose({ log }) : undefined };
}

/**
 * A Docker engine that answers `docker version`. When none answers and we are
 * root on Debian, installs `docker.io` if needed and starts `dockerd` in the
 * background (it outlives this process, like a service would).
 *
 * @param {{ log?: (line: string) => void }} [options]
 */
export async function ensureDockerEngine({ log = (line) => console.log(line) } = {}) {
  const version = engineVersion();
  if (version) {
    log(`containers: Docker engine ${version} answers`);
    return;
  }
  if (!isRoot()) {
    throw new ContainerPrerequisiteError(
      'no Docker engine answers. Install and start one, then run this again:\n' +
        '  sudo apt-get update && sudo apt-get install -y docker.io && sudo systemctl start docker\n' +
        '  sudo usermod -aG docker "$USER"   # then log in again\n' +
        '(or set DOCKER_HOST to an engine you can reach)',
    );
  }
  if (!onPath('dockerd')) installDebianPackages(['docker.io'], log);
  if (!onPath('dockerd')) throw new ContainerPrerequisiteError('apt-get installed docker.io but dockerd is still not on PATH');
  const logFile = '/var/log/dockerd.log';
  log(`containers: starting dockerd in the background (log: ${logFile})`);
  const out = openSync(logFile, 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = engineVersion();
    if (started) {
      log(`containers: Docker engine ${started} answers`);
      return;
    }
    if (child.exitCode !== null) break;
  }
  throw new ContainerPrerequisiteError(`dockerd did not answer within 60 s; see ${logFile}`);
}

/** The CPU weight of all containers together: that of eight host processes (a broker, six appliances, their helpers). */
const containerCpuShares = 8192;

/**
 * On cgroup v1 with no systemd, dockerd puts every container under one
 * `docker` cgroup whose default weight (1024) equals that of a single host
 * process. On a loaded machine (40 runnable host processes on 2 cores) the
 * whole fleet then shares about 2 % of the CPU: the broker froze for up to
 * 20 s at a time while appliances restarted, and every call ran out its
 * deadline however fast the broker refused it. As root, raise that weight
 * once; elsewhere (cgroup v2, systemd slices, not root) leave it alone.
 *
 * @param {{ log?: (line: string) => void }} [options]
 */
export function ensureContainerCpuShare({ log = (line) => console.log(line) } = {}) {
  const root = '/sys/fs/cgroup/cpu';
  if (!isRoot() || !existsSync(join(root, 'cpu.shares'))) return;
  const file = join(root, 'docker', 'cpu.shares');
  try {
    // dockerd creates the cgroup at the first container and keeps a weight it finds.
    mkdirSync(join(root, 'docker'), { recursive: true });
    const current = Number(readFileSync(file, 'utf8').trim());
    if (current >= containerCpuShares) return;
    writeFileSync(file, `${String(containerCpuShares)}\n`);
    log(`containers: CPU weight of the docker cgroup raised from ${String(current)} to ${String(containerCpuShares)}`);
  } catch (error) {
    log(`containers: could not raise the CPU weight of the docker cgroup (${error instanceof Error ? error.message : String(error)}); fleet tests may stall on a loaded host`);
  }
}

/**
 * `debian:trixie-slim` present locally: pulled when a registry answers, else
 * built with debootstrap from the machine's own Debian mirror and imported.
 *
 * @param {{ log?: (line: string) => void }} [options]
 */
export function ensureBaseImage({ log = (line) => console.log(line) } = {}) {
  if (docker(['image', 'inspect', '--format', '{{.Id}}', baseImage]).status === 0) {
    log(`containers: base image ${baseImage} present`);
    return;
  }
  log(`containers: pulling ${baseImage} (giving up after ${String(pullTimeoutMs / 1000)} s)`);
  const pulled = docker(['pull', '--quiet', baseImage], pullTimeoutMs);
  if (pulled.status === 0) return;
  log(`containers: ${pulled.timedOut ? 'the pull did not finish in time' : 'no registry answered'}; building ${baseImage} with debootstrap`);
  if (!isRoot()) {
    throw new ContainerPrerequisiteError(
      `${baseImage} is missing and no registry answers. As root, run:\n` +
        `  apt-get install -y debootstrap\n` +
        `  debootstrap --variant=minbase trixie /tmp/trixie ${debianMirror()}\n` +
        `  tar -C /tmp/trixie -c . | docker import - ${baseImage}`,
    );
  }
  if (!onPath('debootstrap')) installDebianPackages(['debootstrap'], log);
  const root = mkdtempSync(join(tmpdir(), 'trixie-rootfs-'));
  try {
    run('debootstrap', ['--variant=minbase', 'trixie', root, debianMirror()]);
    const imported = spawnSync('sh', ['-c', `tar -C "$1" -c . | docker import - "$2"`, 'sh', root, baseImage], {
      stdio: 'inherit',
    });
    if (imported.status !== 0) throw new ContainerPrerequisiteError(`docker import of ${baseImage} failed`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  log(`containers: built ${baseImage}`);
}

/**
 * The compose command line to use: `docker compose` (v2 plugin) when it
 * exists, else `docker-compose` (installing Debian's 1.29 when root).
 *
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {string[]}
 */
export function ensureCompose({ log = (line) => console.log(line) } = {}) {
  const found = composeCommand();
  if (found) {
    log(`containers: compose is \`${found.join(' ')}\``);
    return found;
  }
  if (!isRoot()) {
    throw new ContainerPrerequisiteError(
      'neither `docker compose` nor `docker-compose` exists. Run:\n  sudo apt-get install -y docker-compose',
    );
  }
  installDebianPackages(['docker-compose'], log);
  const installed = composeCommand();
  if (!installed) throw new ContainerPrerequisiteError('apt-get installed docker-compose but it does not run');
  return installed;
}

/**
 * `['docker', 'compose']` or `['docker-compose']`, whichever answers, else
 * undefined.
 *
 * @returns {string[] | undefined}
 */
export function composeCommand() {
  if (docker(['compose', 'version']).status === 0) return ['docker', 'compose'];
  if (onPath('docker-compose') && spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) {
    return ['docker-compose'];
  }
  return undefined;
}

/**
 * The first Debian archive the machine's apt sources name (deb822 `URIs:` or
 * one-line `deb` entries), skipping the security archive.
 */
export function debianMirror() {
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const name of readdirSync('/etc/apt/sources.list.d')) files.push(join('/etc/apt/sources.list.d', name));
  }
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = /^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(https?:\/\/\S+)/.exec(line);
      if (match && !match[1].includes('security')) return match[1];
    }
  }
  return defaultMirror;
}

function engineVersion() {
  const result = docker(['version', '--format', '{{.Server.Version}}']);
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/**
 * Runs `docker ARGS`. With `timeoutMs` the command is killed when it runs
 * longer (a registry that accepts connections but never answers would hang a
 * pull, and with it every test run).
 */
function docker(args, timeoutMs = 0) {
  const result = spawnSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  const timedOut = result.error?.code === 'ETIMEDOUT';
  return { status: result.error ? -1 : result.status, stdout: result.stdout ?? '', timedOut };
}

function installDebianPackages(packages, log) {
  if (!onPath('apt-get')) {
    throw new ContainerPrerequisiteError(`missing ${packages.join(', ')} and no apt-get here: install it by hand`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`containers: installing ${packages.join(' ')} with apt-get`);
  run('apt-get', ['update'], env);
  run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], env);
}

function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { env, stdio: 'inherit' });
  if (result.error) throw new ContainerPrerequisiteError(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) throw new ContainerPrerequisiteError(`${command} ${args.join(' ')} exited with ${result.status}`);
}
