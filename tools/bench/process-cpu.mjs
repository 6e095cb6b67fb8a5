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
 * A process that started inside the window counts with all its CPU; one that
 * ended inside it is no longer readable and counts with none of its CPU since
 * the window opened (so a group is never negative, at worst a little low).
 * @param {Record<string, () => number[]>} groups
 */
export function startCpuWindow(groups) {
  const take = () => {
    /** @type {Record<string, Map<number, number>>} */
    const perPid = {};
    for (const [name, pids] of Object.entries(groups)) {
      perPid[name] = new Map();
      for (const pid of pids()) {
        const stat = readProcStat(pid);
        if (stat) perPid[name].set(pid, stat.cpuSeconds);
      }
    }
    return { at: performance.now(), machine: machineBusySeconds(), perPid };
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
      const toPercent = (used) => (Number.isFinite(used) && seconds > 0 ? (100 * used) / seconds : null);
      /** @type {Record<string, number | null>} */
      const percent = { machine: toPercent(last.machine - first.machine) };
      for (const [name, pids] of Object.entries(last.perPid)) {
        let used = 0;
        for (const [pid, cpuSeconds] of pids) used += cpuSeconds - (first.perPid[name].get(pid) ?? 0);
        percent[name] = toPercent(used);
      }
      return percent;
    },
  };
}

/**
 * Adds what the machine spent outside the groups measured: builds or tests
 * running beside the bench take cores from it, and the report must say so.
 * @param {Record<string, number | null>} percent as returned by a window's close()
 */
export function withOther(percent) {
  const own = Object.entries(percent).filter(([name]) => name !== 'machine');
  if (percent.machine === null || own.some(([, value]) => value === null)) return { ...percent, other: null };
  return { ...percent, other: Math.max(0, percent.machine - own.reduce((sum, [, value]) => sum + /** @type {number} */ (value), 0)) };
}

/**
 * Resident set size of one process in bytes (VmRSS from /proc/PID/status),
 * or null when it is gone or this is not Linux.
 * @param {number} pid
 */
export function residentBytes(pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
