#!/usr/bin/env node
import { runCli } from './cli.js';

// A closed pipe on stdout (`hsmctl random --bytes 64 | head -c 1`) is reported
// to the pending write, which runCli handles; without a listener the same
// error would also surface as an uncaught exception.
process.stdout.on('error', () => undefined);

process.exitCode = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
