import { execFile } from 'node:child_process';

/** What a finished command left behind. */
export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with arguments and no shell, so that nothing in a service
 * or network name is ever interpreted. Tests pass a fake that records the
 * command lines instead.
 */
export type CommandRunner = (program: string, args: readonly string[]) => Promise<CommandResult>;

/** The real {@link CommandRunner}: `execFile`, 60 s at most per command. */
export const runCommand: CommandRunner = (program, args) =>
  new Promise((resolve, reject) => {
    execFile(program, [...args], { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        // Not an exit status: the program is missing or was killed.
        reject(new Error(`${program} ${args.join(' ')}: ${error.message}`));
        return;
      }
      resolve({ status: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
