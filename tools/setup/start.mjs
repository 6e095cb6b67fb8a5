#!/usr/bin/env node
// `npm start`: install what is missing, build, then run the broker in the
// foreground as if exec'd: same environment, same stdio, signals passed on,
// and its exit status becomes ours. Arguments after `npm start --` go to the
// broker.
//
// Only Node built-ins: this runs before node_modules exists.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { ensurePrerequisites, PrerequisiteError, workspaceRoot } from './prerequisites.mjs';

const log = (line) => console.error(line);
const entry = join(workspaceRoot, 'apps', 'broker', 'dist', 'main.js');

try {
  ensurePrerequisites({ log });
} catch (error) {
  log(error instanceof PrerequisiteError ? `start: ${error.message}` : error);
  process.exit(1);
}

// The broker and everything the README's quick start uses with it (hsmctl, run
// as `npx hsmctl`), so the first command a newcomer types works. Build output
// goes to stderr so stdout carries only the broker's own output.
const build = spawnSync(
  join(workspaceRoot, 'node_modules', '.bin', 'nx'),
  ['run-many', '-t', 'build', '-p', '@hsm-broker/broker', '@hsm-broker/hsmctl', '--outputStyle=static'],
  {
    cwd: workspaceRoot,
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' },
    stdio: ['ignore', 2, 2],
  },
);
if (build.error || build.status !== 0) {
  log(`start: build failed (${build.error?.message ?? `exit ${build.status}`}); not starting the broker.`);
  process.exit(1);
}
if (!existsSync(entry)) {
  log(`start: ${entry} is missing after the build.`);
  process.exit(1);
}

const broker = spawn(process.execPath, [entry, ...process.argv.slice(2)], {
  cwd: workspaceRoot,
  env: process.env,
  stdio: 'inherit',
});

// A terminal's Ctrl-C reaches the broker directly (same process group) and
// again through npm, so one keypress can arrive here more than once within a
// few milliseconds: pass each signal on once per burst.
const lastForwarded = new Map();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    const now = Date.now();
    if (now - (lastForwarded.get(signal) ?? 0) < 250) return;
    lastForwarded.set(signal, now);
    if (broker.exitCode === null && broker.signalCode === null) broker.kill(signal);
  });
}

broker.on('error', (error) => {
  log(`start: could not start the broker: ${error.message}`);
  process.exit(1);
});
broker.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal so our parent sees what the broker saw; the
    // shell convention 128 + n if that signal does not end us.
    process.removeAllListeners(signal);
    process.exitCode = 128 + (constants.signals[signal] ?? 0);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
