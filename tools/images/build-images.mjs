// Builds the appliance image (apps/hsm-node/Dockerfile) and the broker image
// (apps/broker/Dockerfile) from a staged context: the compiled workspace, its
// production node_modules (native addons already built for this Node) and the
// Node binary that built them, so the addons' ABI matches by construction.
// Each image is tagged with a digest of its context; an unchanged tree is not
// built again, which keeps repeated test runs cheap.
//
// Only Node built-ins here.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Image names; `:dev` always points at the latest build from this tree. */
export const images = {
  hsmNode: { name: 'hsm-broker/hsm-node', dockerfile: 'apps/hsm-node/Dockerfile' },
  broker: { name: 'hsm-broker/broker', dockerfile: 'apps/broker/Dockerfile' },
};

const contextDir = join(workspaceRoot, 'tmp', 'images', 'context');
/** The apps the images run; the libraries they need are found from their package.json files. */
const imageApps = ['apps/broker', 'apps/hsm-node', 'apps/hsmctl'];
const workspaces = workspaceClosure(imageApps);
/**
 * The folders of `apps` and of every workspace library they depend on,
 * directly or not (production dependencies only), so that a new library
 * dependency can never be left out of the images.
 *
 * @param {string[]} apps
 * @returns {string[]}
 */
function workspaceClosure(apps) {
  const folderOf = new Map();
  for (const group of ['apps', 'libs']) {
    for (const entry of readdirSync(join(workspaceRoot, group))) {
      const manifest = join(workspaceRoot, group, entry, 'package.json');
      if (existsSync(manifest)) folderOf.set(JSON.parse(readFileSync(manifest, 'utf8')).name, `${group}/${entry}`);
    }
  }
  const found = new Set();
  const visit = (folder) => {
    if (found.has(folder)) return;
    found.add(folder);
    const { dependencies = {} } = JSON.parse(readFileSync(join(workspaceRoot, folder, 'package.json'), 'utf8'));
    for (const name of Object.keys(dependencies)) if (folderOf.has(name)) visit(folderOf.get(name));
  };
  for (const app of apps) visit(app);
  return [...found];
}

/** The label every container, network and volume the project creates carries. */
export const projectLabel = 'io.github.hsm-broker.project';

/**
 * Builds both images unless images of the same content exist. Returns the
 * tags (`name:<digest>`), which also carry the `:dev` alias.
 *
 * @param {{ log?: (line: string) => void, compile?: boolean }} [options]
 * @returns {{ hsmNode: string, broker: string }}
 */
export function buildImages({ log = (line) => console.log(line), compile = true } = {}) {
  if (compile) run('npx', ['tsc', '-b', 'tsconfig.json'], workspaceRoot);
  stageContext();
  const digest = contextDigest();
  const tags = {};
  for (const [key, image] of Object.entries(images)) {
    const dockerfileDigest = createHash('sha256').update(readFileSync(join(workspaceRoot, image.dockerfile))).digest('hex').slice(0, 6);
    const tag = `${image.name}:${digest}${dockerfileDigest}`;
    tags[key] = tag;
    if (spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' }).status === 0) {
      log(`images: ${tag} is up to date`);
    } else {
      log(`images: building ${tag}`);
      runQuiet('docker', ['build', '--quiet', '--label', `${projectLabel}=hsm-broker`, '-t', tag, '-t', `${image.name}:dev`, '-f', join(workspaceRoot, image.dockerfile), contextDir], workspaceRoot);
    }
    run('docker', ['tag', tag, `${image.name}:dev`], workspaceRoot);
  }
  return /** @type {{ hsmNode: string, broker: string }} */ (tags);
}

/** Copies what the images need into tmp/images/context (rebuilt every time; it is small). */
function stageContext() {
  rmSync(contextDir, { recursive: true, force: true });
  mkdirSync(contextDir, { recursive: true });
  for (const workspace of workspaces) {
    const from = join(workspaceRoot, workspace);
    if (!existsSync(join(from, 'dist'))) throw new Error(`${workspace}/dist is missing: build first (npx tsc -b tsconfig.json)`);
    cpSync(join(from, 'package.json'), join(contextDir, workspace, 'package.json'));
    cpSync(join(from, 'dist'), join(contextDir, workspace, 'dist'), {
      recursive: true,
      filter: (path) => !/\.(spec|int\.spec)\.(js|d\.ts)(\.map)?$/.test(path) && !path.endsWith('.tsbuildinfo'),
    });
  }
  // The broker serves reflection from the .proto files.
  cpSync(join(workspaceRoot, 'proto'), join(contextDir, 'proto'), { recursive: true });
  const listed = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable', ...workspaces.flatMap((w) => ['-w', w])], {
    cwd: workspaceRoot,
    encoding: 'utf8',
  });
  const paths = [...new Set(listed.stdout.split('\n').map((line) => relative(workspaceRoot, line.trim())))]
    .filter((path) => path.includes('node_modules') && !path.includes('@types/'))
    .sort();
  const copied = [];
  for (const path of paths) {
    if (copied.some((parent) => path.startsWith(`${parent}/`))) continue;
    copied.push(path);
    // Workspace links stay links, so they point into the staged apps/ and libs/.
    cpSync(join(workspaceRoot, path), join(contextDir, path), { recursive: true, verbatimSymlinks: true });
  }
  mkdirSync(join(contextDir, 'bin'), { recursive: true });
  cpSync(process.execPath, join(contextDir, 'bin', 'node'));
  writeFileSync(join(contextDir, '.dockerignore'), '**/*.map\n');
  cpSync(join(workspaceRoot, 'apps/broker/docker-entrypoint.sh'), join(contextDir, 'bin', 'broker-entrypoint.sh'));
}

/**
 * A digest of the staged files: every path, symlink target and file content,
 * node_modules included (a dependency rebuilt or patched in place keeps its
 * size, and an image built from the old bytes must not be reused).
 */
function contextDigest() {
  const hash = createHash('sha256');
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, entry.name);
      hash.update(`${relative(contextDir, path)}\0`);
      if (entry.isDirectory()) walk(path);
      else if (entry.isSymbolicLink()) hash.update(`-> ${readlinkSync(path)}\0`);
      else if (entry.isFile()) {
        hash.update(`${String(statSync(path).size)}\0`);
        hash.update(readFileSync(path));
      }
    }
  };
  walk(contextDir);
  return hash.digest('hex').slice(0, 12);
}

/** Like run(), but output is shown only when the command fails (docker build is chatty). */
function runQuiet(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) {
    process.stderr.write(result.stdout + result.stderr);
    throw new Error(`${command} ${args.slice(0, 3).join(' ')} … exited with ${result.status ?? result.signal}`);
  }
}

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`${command} ${args.slice(0, 3).join(' ')} … exited with ${result.status ?? result.signal}`);
}

