import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerFleet } from './container-fleet.js';
import { workspaceRoot } from './fleet-tooling.js';

/** What `hsmctl chaos --json` printed, as far as the suite checks it. */
export interface ChaosSummary {
  seed: number;
  issued: number;
  /** Fault and undo actions of the drawn schedule. */
  faultActions: number;
  recovered: boolean;
  violations: unknown[];
}

/** How an `hsmctl chaos` run against a harness fleet ended. */
export interface ChaosRunResult {
  exitCode: number | null;
  summary: ChaosSummary;
  /** Records in the history file the run wrote. */
  historyLines: number;
  /** stderr (schedule, progress) and stdout, for a failure message. */
  output: string;
}

/**
 * Runs the operator's `hsmctl chaos` as its own process against a harness
 * fleet, with the docker fault target: the harness labels its containers
 * and networks as a compose project (service names are the appliance ids),
 * so the CLI breaks this fleet exactly as it breaks `docker compose up`.
 * Resolves with the run's JSON summary and the size of its history file.
 */
export async function runChaosAgainst(fleet: ContainerFleet, options: { seed: number; duration: string; log?: (line: string) => void }): Promise<ChaosRunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hsmb-chaos-'));
  const history = join(dir, 'history.jsonl');
  try {
    const args = [
      join(workspaceRoot, 'apps/hsmctl/dist/main.js'),
      '--address',
      fleet.brokerAddress,
      'chaos',
      '--seed',
      String(options.seed),
      '--duration',
      options.duration,
      '--target',
      'docker',
      '--compose-project',
      fleet.composeProject,
      '--history',
      history,
      '--json',
    ];
    options.log?.(`chaos: hsmctl ${args.slice(1).join(' ')}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      // Reported through `output` below.
    }
    const schedule = Array.isArray(parsed['schedule']) ? parsed['schedule'] : [];
    let historyLines = 0;
    try {
      historyLines = readFileSync(history, 'utf8').split('\n').filter((line) => line.trim() !== '').length;
    } catch {
      // No history file: historyLines stays 0 and the test says so.
    }
    const summary: ChaosSummary = {
      seed: Number(parsed['seed']),
      issued: Number(parsed['issued'] ?? 0),
      faultActions: schedule.length,
      recovered: parsed['recovered'] === true,
      violations: Array.isArray(parsed['violations']) ? parsed['violations'] : ['no violations list in the output'],
    };
    // The schedule and the progress lines, for the suite's log.
    options.log?.(`chaos: ${stderr.split(/\r|\n/).filter((line) => line.trim() !== '').slice(-12).join('\n# chaos: ')}`);
    return { exitCode, summary, historyLines, output: `${stderr}\n${stdout}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
