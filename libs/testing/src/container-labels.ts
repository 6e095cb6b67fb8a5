import { hostname } from 'node:os';

/** Every container and network a harness fleet creates carries these labels. */
export const fleetLabel = 'io.github.hsm-broker.fleet';
/** The process that owns the fleet, so a later run can tell leftovers from a live fleet. */
export const ownerPidLabel = 'io.github.hsm-broker.fleet.owner-pid';
/** The machine the owner runs on (pids mean nothing elsewhere). */
export const ownerHostLabel = 'io.github.hsm-broker.fleet.owner-host';

/** The labels compose (v2 and 1.29 alike) puts on what it creates; the docker fault driver finds a fleet by them. */
export const composeLabels = { project: 'com.docker.compose.project', service: 'com.docker.compose.service' } as const;

/** The compose project name a harness fleet's containers and networks carry. */
export function composeProjectOf(runId: string): string {
  return `hsmb-${runId}`;
}

/** The labels of one fleet run. */
export function fleetLabels(runId: string): Record<string, string> {
  return { [fleetLabel]: runId, [ownerPidLabel]: String(process.pid), [ownerHostLabel]: hostname() };
}

/** Whether the owner recorded in `labels` has gone (so its containers are leftovers). */
export function ownerGone(labels: Record<string, string> | undefined): boolean {
  if (!labels) return false;
  if (labels[ownerHostLabel] !== hostname()) return false;
  const pid = Number(labels[ownerPidLabel]);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error: unknown) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
