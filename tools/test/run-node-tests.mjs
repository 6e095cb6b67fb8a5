#!/usr/bin/env node
// Runs one project's compiled tests with Node's built-in runner.
//
//   node ../../tools/test/run-node-tests.mjs <unit|integration> <distDir> [node --test options...]
//
// Run from a project folder (npm scripts do that). Node 20's `--test` takes no
// globs, so the files are found here and passed explicitly. Results go twice:
// the `spec` reporter to stdout for people, and TAP to
// <workspace>/reports/<project>-<kind>.tap for tools/test/run-all.mjs to count.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Per-kind settings. A timeout is per test; on Node 20 it also caps each file. */
const kinds = {
  unit: {
    matches: (name) => name.endsWith('.spec.js') && !name.endsWith('.int.spec.js') && !name.endsWith('.fleet.spec.js'),
    timeoutMs: 60_000,
    concurrency: [],
  },
  integration: {
    matches: (name) => name.endsWith('.int.spec.js'),
    timeoutMs: 10 * 60_000,
    // Integration suites share SoftHSM tokens and ports: one file at a time.
    concurrency: ['--test-concurrency=1'],
  },
  // Failover suites on a containerised fleet (Docker): one file at a time.
  fleet: {
    matches: (name) => name.endsWith('.fleet.spec.js'),
    timeoutMs: 20 * 60_000,
    concurrency: ['--test-concurrency=1'],
  },
};

const [kindName, distDir, ...forwarded] = process.argv.slice(2);
const kind = kinds[kindName];
if (!kind || !distDir) {
  console.error('usage: run-node-tests.mjs <unit|integration|fleet> <distDir> [node --test options...]');
  process.exit(2);
}

const projectName = readProjectName(process.cwd());
const label = `${projectName} ${kindName} tests`;
const root = resolve(distDir);
const reportsDir = join(workspaceRoot, 'reports');
const tapFile = join(reportsDir, `${sanitise(projectName)}-${kindName}.tap`);
// A report left from an earlier run would be counted as this run's.
rmSync(tapFile, { force: true });

if (!existsSync(root)) {
  console.log(`${label}: ${relative(process.cwd(), root) || root} does not exist (not built?); no tests to run.`);
  process.exit(0);
}

const files = findFiles(root, kind.matches).sort();
if (files.length === 0) {
  console.log(`${label}: no ${kindName === 'unit' ? '*.spec.js' : `*.${kindName === 'fleet' ? 'fleet' : 'int'}.spec.js`} files under ${relative(process.cwd(), root)}; nothing to run.`);
  process.exit(0);
}

mkdirSync(reportsDir, { recursive: true });
const args = [
  '--test',
  ...kind.concurrency,
  `--test-timeout=${kind.timeoutMs}`,
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
  ...forwarded,
  ...files.map((file) => relative(process.cwd(), file)),
];

console.log(`${label}: ${files.length} file(s), TAP in ${relative(workspaceRoot, tapFile)}`);
const child = spawn(process.execPath, args, { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (error) => {
  console.error(`${label}: could not start node: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    console.error(`${label}: node --test was killed by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});

function readProjectName(dir) {
  try {
    const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name;
    if (typeof name === 'string' && name) return name;
  } catch {
    // fall through to the folder name
  }
  return dir.split(/[\\/]/).filter(Boolean).pop() ?? 'project';
}

/** `@hsm-broker/errors` → `hsm-broker-errors`: safe as a file name everywhere. */
function sanitise(name) {
  return name.replace(/^@/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'project';
}

function findFiles(dir, matches) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') found.push(...findFiles(path, matches));
    } else if (entry.isFile() && matches(entry.name)) {
      found.push(path);
    }
  }
  return found;
}
