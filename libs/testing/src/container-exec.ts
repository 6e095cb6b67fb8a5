import type { DockerContainer } from './docker-client.js';

/** How a command run inside a container ended. */
export interface ExecResult {
  exitCode: number | null;
  /** stdout and stderr together, trimmed. */
  output: string;
}

/** Runs `command` (argv, no shell) inside a running container and collects its output. */
export async function execIn(container: DockerContainer, command: readonly string[]): Promise<ExecResult> {
  const exec = await container.exec({ Cmd: [...command], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const inspected = await exec.inspect();
  return { exitCode: inspected.ExitCode, output: demultiplex(Buffer.concat(chunks)) };
}

/** Docker multiplexes stdout and stderr of an exec with 8-byte frame headers. */
function demultiplex(raw: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8').trim();
}
