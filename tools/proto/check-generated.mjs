#!/usr/bin/env node
// Fails when the committed generated code (libs/proto/src/gen) differs from
// what `buf generate` makes from proto/ now.
//
// It generates into a temporary folder (`buf generate --output TMP` prepends
// TMP to every `out:` of buf.gen.yaml) and compares file by file, so the work
// tree is never touched and it works the same in a fresh clone, with
// uncommitted edits, or outside git.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));
const template = join(workspaceRoot, 'buf.gen.yaml');
const buf = join(workspaceRoot, 'node_modules', '.bin', process.platform === 'win32' ? 'buf.cmd' : 'buf');

if (!existsSync(buf)) {
  console.error('check-generated: node_modules/.bin/buf not found; run `npm ci` first.');
  process.exit(1);
}

const outDirs = readOutDirs(template);
if (outDirs.length === 0) {
  console.error('check-generated: found no `out:` in buf.gen.yaml');
  process.exit(1);
}

const scratch = mkdtempSync(join(tmpdir(), 'hsm-broker-gen-'));
try {
  process.exitCode = check(scratch);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

/** Generates into scratch and compares; returns the exit code. */
function check(scratch) {
  const result = spawnSync(buf, ['generate', '--template', template, '--output', scratch], {
    cwd: workspaceRoot,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  });
  if (result.error || result.status !== 0) {
    console.error(`check-generated: buf generate failed (${result.error?.message ?? `exit ${result.status}`})`);
    return 1;
  }

  const problems = [];
  for (const out of outDirs) {
    const fresh = listFiles(join(scratch, out));
    const committed = listFiles(join(workspaceRoot, out));
    for (const file of new Set([...fresh, ...committed])) {
      const path = join(out, file);
      if (!committed.has(file)) problems.push(`missing   ${path}`);
      else if (!fresh.has(file)) problems.push(`extra     ${path} (no longer generated)`);
      else if (!readFileSync(join(scratch, out, file)).equals(readFileSync(join(workspaceRoot, out, file)))) {
        problems.push(`differs   ${path}`);
      }
    }
  }

  if (problems.length > 0) {
    console.error(`check-generated: generated code is stale (${problems.length} file(s)):`);
    for (const line of problems.sort()) console.error(`  ${line}`);
    console.error('Run `npm run generate` and commit the result.');
    return 1;
  }
  console.log(`check-generated: ${outDirs.join(', ')} matches proto/ (buf generate)`);
  return 0;
}

/** The `out:` folders of a buf.gen.yaml (one per plugin). */
function readOutDirs(file) {
  const dirs = [];
  for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:-\s+)?out:\s*(\S+?)\s*(?:#.*)?$/gm)) {
    dirs.push(match[1].replace(/^['"]|['"]$/g, '').replace(/\/+$/, ''));
  }
  return [...new Set(dirs)];
}

/** Every file under dir, as paths relative to dir; empty when dir is absent. */
function listFiles(dir, base = dir, found = new Set()) {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) listFiles(path, base, found);
    else found.add(relative(base, path));
  }
  return found;
}
