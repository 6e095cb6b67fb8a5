// Where the CPU went during a measured window. On a 2-core machine the load
// generators, the broker's gRPC process and its appliance workers all share
// the same cores, so throughput alone cannot say what limited it; CPU time
// per process group can. Linux /proc only; elsewhere the numbers are null.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * user+system CPU seconds and parent pid of one process, or undefined when it is gone.
 * @param {number} pid
 */
function readProcStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clockTicks };
  } catch {
    return undefined;
  }
}

/**
 * Pids of every live descendant of `rootPid` (the broker's appliance workers).
 * @param {number} rootPid
 * @returns {number[]}
 */
export function descendantsOf(rootPid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  let entries;
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  for (const name of entries) {
    const stat = readProcStat(Number(name));
    if (!stat) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(Number(name));
    children.set(stat.ppid, siblings);
  }
  const found = [];
  const queue = [rootPid];
  while (queue.length) {
    for (const child of children.get(/** @type {number} */ (queue.shift())) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * Summed CPU seconds of some processes.
 * @param {number[]} pids
 */
export function cpuSecondsOf(pids) {
  let total = 0;
  for (const pid of pids) total += readProcStat(pid)?.cpuSeconds ?? 0;
  return total;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds() {
  try {
    const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
    return (user + nice + system + irq + softirq + steal) / clockTicks;
  } catch {
    return NaN;
  }
}

/**
 * Measures groups of processes between two instants.
 * `groups` maps a name to a function giving that group's pids at sampling
 * time (the broker's workers are looked up each time: one may have restarted).
 * @param {Record<string, () => number[]>} groups
 */
export function startCpuWindow(groups) {
  const take = () => {
    /** @type {Record<string, number>} */
    const sample = { machine: machineBusySeconds() };
    for (const [name, pids] of Object.entries(groups)) sample[name] = cpuSecondsOf(pids());
    return { at: performance.now(), sample };
  };
  const first = take();
  return {
    /**
     * CPU used per group since the window opened, as percent of one core
     * (200 % means both cores of a 2-core machine).
     */
    close() {
      const last = take();
      const seconds = (last.at - first.at) / 1000;
      /** @type {Record<string, number | null>} */
      const percent = {};
      for (const name of Object.keys(last.sample)) {
        const used = last.sample[name] - first.sample[name];
        percent[name] = Number.isFinite(used) && seconds > 0 ? (100 * used) / seconds : null;
      }
      return percent;
    },
  };
}
