#!/usr/bin/env node
// `npm test`: everything CI checks, in order, continuing past failures so one
// run shows every problem. Stages: prerequisites, generated code, buf lint,
// build, lint, unit tests, integration tests, then the containers (Docker
// engine, base image, appliance and broker images) and the failover suites on
// a containerised fleet. When Docker cannot be made to run, that stage fails
// and says why: the fleet suites are never skipped silently.
//
// Test results are counted from the TAP files that run-node-tests.mjs writes to
// reports/. A stage that fails outside the tests (stale generated code, build,
// lint) counts as one failed test, so it can never pass unnoticed. The last
// line printed is always `N passed, N failed, N skipped`.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrerequisites, workspaceRoot } from '../setup/prerequisites.mjs';
import { ensureCompose, ensureContainerPrerequisites } from '../images/container-prerequisites.mjs';
import { buildImages } from '../images/build-images.mjs';
import { postgresUrlVariable, startPostgres } from './postgres-server.mjs';

const reportsDir = join(workspaceRoot, 'reports');
const bin = (name) => join(workspaceRoot, 'node_modules', '.bin', name);

// Nx: no daemon and no cloud in one-shot runs, and plain streamed output
// (the terminal UI would swallow test output in CI logs).
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' };
const nx = (target) => [bin('nx'), ['run-many', '-t', target, '--parallel=1', '--outputStyle=stream']];

/** @type {{ name: string, ok: boolean, counted: boolean, seconds: number, note?: string }[]} */
const results = [];
const runStarted = Date.now();

clearReports();

const prerequisitesOk = await stage('prerequisites', async () => {
  ensurePrerequisites({ log: (line) => console.log(line), forTests: true });
  // The unit stage checks docker-compose.yml with `compose config` (no engine needed).
  ensureCompose({ log: (line) => console.log(line) });
  return { ok: true };
});

if (prerequisitesOk) {
  await stage('generated code', () => command(process.execPath, [join(workspaceRoot, 'tools/proto/check-generated.mjs')]));
  await stage('buf lint', () => command(bin('buf'), ['lint']));
  await stage('build', () => command(...nx('build')));
  await stage('lint', () => command(...nx('lint')));
  await stage('unit tests', () => testStage('test', 'unit'));
  // One PostgreSQL server for every integration test file (each makes its own database in it).
  let postgres;
  const postgresOk = await stage('postgresql', async () => {
    postgres = await startPostgres({ log: (line) => console.log(line) });
    env[postgresUrlVariable] = postgres.url;
    return { ok: true };
  });
  await stage('integration tests', () => testStage('integration', 'integration'));
  // Every test broker's full log, searched for the PINs and plaintexts it was given.
  await stage('log leak scan', () => command(process.execPath, [join(workspaceRoot, 'tools/test/scan-broker-logs.mjs'), '--require-logs']));
  if (postgresOk) {
    postgres.stop();
    delete env[postgresUrlVariable];
  }
  const containersOk = await stage('containers', async () => {
    await ensureContainerPrerequisites({ log: (line) => console.log(line), compose: false });
    // Built already by the build stage; images are built once here and reused by every fleet suite.
    buildImages({ log: (line) => console.log(line), compile: false });
    return { ok: true };
  });
  if (containersOk) await stage('fleet tests', () => testStage('fleet', 'fleet'));
  else console.error('fleet tests: not run because the containers stage failed (see its message above); counted as failed');
}

finish();

/**
 * Runs a test target. Failing tests are already counted from TAP; the stage
 * itself fails only when the target failed and no test failure explains it
 * (a crashed runner, a dependency that did not build).
 */
async function testStage(target, kind) {
  const { ok } = await command(...nx(target));
  if (ok) return { ok: true };
  const counts = sumReports((file) => file.endsWith(`-${kind}.tap`));
  // Already counted test by test: not counted again as a stage failure.
  if (counts.failed > 0) return { ok: false, counted: false, note: `${counts.failed} test(s) failed` };
  return { ok: false, note: 'target failed without a failing test (see output above)' };
}

/** Runs one stage, prints its time, and records the outcome. */
async function stage(name, body) {
  const started = Date.now();
  console.log(`\n━━━ ${name} ━━━`);
  let outcome;
  try {
    outcome = await body();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    outcome = { ok: false };
  }
  const seconds = (Date.now() - started) / 1000;
  results.push({ name, ok: outcome.ok, counted: outcome.counted ?? true, seconds, note: outcome.note });
  const suffix = outcome.note ? ` (${outcome.note})` : '';
  console.log(`━━━ ${name}: ${outcome.ok ? 'done' : 'FAILED'} in ${seconds.toFixed(1)} s${suffix}`);
  return outcome.ok;
}

/** Spawns a command with inherited output; resolves `{ ok }` when it exits. */
function command(file, args) {
  return new Promise((resolve) => {
    if (file !== process.execPath && !existsSync(file)) {
      console.error(`${file} not found (node_modules incomplete?)`);
      resolve({ ok: false });
      return;
    }
    const child = spawn(file, args, { cwd: workspaceRoot, env, stdio: 'inherit' });
    child.on('error', (error) => {
      console.error(`could not run ${file}: ${error.message}`);
      resolve({ ok: false });
    });
    child.on('close', (code, signal) => {
      if (signal) console.error(`${file} was killed by ${signal}`);
      resolve({ ok: code === 0 && !signal });
    });
  });
}

function clearReports() {
  mkdirSync(reportsDir, { recursive: true });
  // Broker logs of an earlier run would be scanned as this run's.
  rmSync(join(reportsDir, 'broker-logs'), { recursive: true, force: true });
  for (const file of readdirSync(reportsDir)) {
    if (file.endsWith('.tap')) rmSync(join(reportsDir, file), { force: true });
  }
}

/**
 * Adds up the closing counts of the TAP files in reports/. Node's TAP reporter
 * ends with unindented `# pass N`, `# fail N`, `# cancelled N`, `# skipped N`,
 * `# todo N` lines (subtests are indented; test output is escaped as `# \#`).
 */
function sumReports(include = () => true) {
  const total = { passed: 0, failed: 0, skipped: 0, files: [], failures: [] };
  if (!existsSync(reportsDir)) return total;
  for (const file of readdirSync(reportsDir).filter((f) => f.endsWith('.tap') && include(f)).sort()) {
    const counts = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
    let sawSummary = false;
    const lines = readFileSync(join(reportsDir, file), 'utf8').split(/\r?\n/);
    total.failures.push(...failedTests(file, lines));
    for (const line of lines) {
      const match = /^# (pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
      if (match) {
        counts[match[1]] = Number(match[2]);
        sawSummary = true;
      }
    }
    // A report with no closing counts means the runner died mid-way.
    const failed = counts.fail + counts.cancelled + (sawSummary ? 0 : 1);
    const skipped = counts.skipped + counts.todo;
    total.passed += counts.pass;
    total.failed += failed;
    total.skipped += skipped;
    total.files.push({ file, passed: counts.pass, failed, skipped, complete: sawSummary });
  }
  return total;
}

/**
 * The failed leaf tests of one TAP report, each with the first line of its
 * error, so a failing run names what failed right above its last line. A
 * failed suite whose children all passed (a hook failed) is named too.
 */
function failedTests(file, lines) {
  const failures = [];
  let pendingParentIndent = -1;
  for (let index = 0; index < lines.length; index++) {
    const match = /^( *)not ok \d+ - (.*)$/.exec(lines[index]);
    if (!match) continue;
    const indent = match[1].length;
    // Node prints a suite after its subtests: a failed suite right after a
    // failed child is the same failure.
    if (pendingParentIndent > indent) {
      pendingParentIndent = indent;
      continue;
    }
    let error = '';
    for (let next = index + 1; next < lines.length && next < index + 40; next++) {
      const field = /^ *(error|failureType): *(.*)$/.exec(lines[next]);
      if (field?.[1] === 'error') {
        error = field[2].replace(/^['"|>-]+\s*/, '').replace(/['"]$/, '');
        if (error === '' && next + 1 < lines.length) error = lines[next + 1].trim();
        break;
      }
      if (/^ *\.\.\.$/.test(lines[next])) break;
    }
    failures.push({ file, name: match[2], error: error.slice(0, 300) });
    pendingParentIndent = indent;
  }
  return failures;
}

function finish() {
  const totals = sumReports();
  // Stages whose failure no test report shows.
  const failedStages = results.filter((r) => !r.ok && r.counted);

  console.log('\n━━━ summary ━━━');
  for (const r of results) {
    console.log(`${r.ok ? 'ok    ' : 'FAILED'}  ${r.name.padEnd(18)} ${r.seconds.toFixed(1).padStart(7)} s${r.note ? `  ${r.note}` : ''}`);
  }
  console.log(`total ${((Date.now() - runStarted) / 1000).toFixed(1)} s`);
  if (totals.files.length === 0) {
    console.log('No test reports in reports/ (no compiled *.spec.js files found).');
  }
  for (const f of totals.files) {
    const incomplete = f.complete ? '' : ' (incomplete report: runner did not finish)';
    console.log(`  reports/${f.file}: ${f.passed} passed, ${f.failed} failed, ${f.skipped} skipped${incomplete}`);
  }
  if (totals.failures.length > 0) {
    console.log('Failed tests:');
    for (const f of totals.failures.slice(0, 30)) console.log(`  ${f.file}: ${f.name}${f.error ? ` -- ${f.error}` : ''}`);
    if (totals.failures.length > 30) console.log(`  ... and ${totals.failures.length - 30} more`);
  }
  if (failedStages.length > 0) {
    console.log(`Failed stages (each counted as 1 failed): ${failedStages.map((r) => r.name).join(', ')}`);
  }

  const failed = totals.failed + failedStages.length;
  process.exitCode = failed > 0 ? 1 : 0;
  console.log(`${totals.passed} passed, ${failed} failed, ${totals.skipped} skipped`);
}
