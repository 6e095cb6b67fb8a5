/**
 * setTimeout for time limits on replies from other processes. Node runs
 * expired timers before it reads pending I/O, so after the event loop stalls
 * (a large request being received, a long garbage collection) a plain timer
 * fires even when the reply it waits for arrived in time and sits unread in
 * the IPC channel: a busy broker would then kill healthy workers and count
 * its own stall against the appliance. This timer lets the loop read pending
 * I/O once (setImmediate runs after the poll phase) before it fires, so a
 * reply that did arrive settles first; `callback` must check whether it is
 * still needed.
 */
export function setStallTolerantTimeout(callback: () => void, ms: number): NodeJS.Timeout {
  return setTimeout(() => setImmediate(callback), ms);
}
