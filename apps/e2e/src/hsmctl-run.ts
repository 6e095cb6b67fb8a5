import { runProcess, type CommandLine, type ProcessResult, type RunOptions } from './process-run.js';

/** hsmctl's entry point, run with the same Node as the tests. */
export function hsmctlCommand(address: string, args: readonly string[]): CommandLine {
  return { command: process.execPath, args: ['apps/hsmctl/dist/main.js', '--address', address, ...args] };
}

/** Runs hsmctl against `address`. */
export function runHsmctl(address: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const { command, args: fullArgs } = hsmctlCommand(address, args);
  return runProcess(command, fullArgs, options);
}
