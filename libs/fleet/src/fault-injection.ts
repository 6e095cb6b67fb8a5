import { BrokerError } from '@hsm-broker/errors';
import { translateCkr } from '@hsm-broker/pkcs11';

/** What an injected fault does to a call at the worker boundary. */
export type FaultKind = 'ERROR' | 'LATENCY' | 'HANG' | 'CRASH';

/** A fault in force on one appliance. */
export interface ActiveFault {
  kind: FaultKind;
  /** Chance that a call is affected, 0..1; 0 means every call. */
  probability: number;
  /** For LATENCY. */
  latencyMs: number;
  /** Absolute expiry (ms since epoch); undefined lasts until cleared. */
  expiresAt: number | undefined;
}

const ckrDeviceError = 0x30;

function blockFor(ms: number): void {
  // Blocks the worker's only thread, as a slow or stuck C call would.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The faults in force that strike this call, each drawn by its probability. */
function* striking(faults: readonly ActiveFault[], random: () => number): Generator<ActiveFault> {
  for (const fault of faults) {
    if (fault.expiresAt !== undefined && Date.now() >= fault.expiresAt) continue;
    if (fault.probability > 0 && random() >= fault.probability) continue;
    yield fault;
  }
}

/** An injected ERROR fails the call with CKR_DEVICE_ERROR; a CRASH kills the process. */
function failOrCrash(kind: 'ERROR' | 'CRASH', op: string): void {
  if (kind === 'ERROR') throw translateCkr(ckrDeviceError, `C_${op.charAt(0).toUpperCase()}${op.slice(1)}`, 'injected fault');
  process.kill(process.pid, 'SIGKILL');
  blockFor(Number.POSITIVE_INFINITY);
}

/**
 * Applies the faults in force to one call, inside the worker process, so
 * that a rehearsal takes exactly the paths a real failure takes: a device
 * error comes back as CKR_DEVICE_ERROR, a hang blocks the process until the
 * broker kills it, a crash kills the process.
 * @internal
 */
export function applyFaults(faults: readonly ActiveFault[], op: string, random: () => number = Math.random): void {
  for (const fault of striking(faults, random)) {
    if (fault.kind === 'LATENCY') blockFor(fault.latencyMs);
    else if (fault.kind === 'HANG') blockFor(Number.POSITIVE_INFINITY);
    else failOrCrash(fault.kind, op);
  }
}

/**
 * Applies the faults in force to one call that runs on a session of its own
 * beside others (see serveWorker): latency and a hang hold that call only,
 * as a slow or stuck C call on one of the thread pool's threads would, while
 * the other sessions keep serving; an error and a crash act as in
 * {@link applyFaults}.
 * @internal
 */
export async function applySessionFaults(faults: readonly ActiveFault[], op: string, random: () => number = Math.random): Promise<void> {
  for (const fault of striking(faults, random)) {
    if (fault.kind === 'LATENCY') await new Promise((resolve) => setTimeout(resolve, fault.latencyMs));
    else if (fault.kind === 'HANG') await new Promise(() => undefined);
    else failOrCrash(fault.kind, op);
  }
}

/** A fault to inject, as an operator asks for it. */
export interface FaultRequest {
  kind: FaultKind;
  probability: number;
  latencyMs: number;
  durationMs: number;
}

/** A week; also keeps expiry timers below Node's 2^31 ms limit. */
const maxFaultDurationMs = 7 * 24 * 60 * 60 * 1000;

/** Checks an operator's fault request and turns it into the fault to put in force; bad fields are INVALID_ARGUMENT naming the field. */
export function faultFromRequest(request: FaultRequest, now: number = Date.now()): ActiveFault {
  if (!(request.probability >= 0 && request.probability <= 1)) {
    throw BrokerError.invalidArgument('probability', `must be 0 to 1, got ${String(request.probability)}`, 'INVALID_PROBABILITY');
  }
  if (!Number.isInteger(request.durationMs) || request.durationMs < 0 || request.durationMs > maxFaultDurationMs) {
    throw BrokerError.invalidArgument('duration_ms', `must be 0 (until cleared) to ${String(maxFaultDurationMs)}, got ${String(request.durationMs)}`, 'INVALID_DURATION');
  }
  if (request.kind === 'LATENCY' && (request.latencyMs <= 0 || request.latencyMs > 600_000)) {
    throw BrokerError.invalidArgument('latency_ms', `must be 1 to 600000 for LATENCY, got ${String(request.latencyMs)}`, 'INVALID_LATENCY');
  }
  return {
    kind: request.kind,
    probability: request.probability,
    latencyMs: request.latencyMs,
    expiresAt: request.durationMs > 0 ? now + request.durationMs : undefined,
  };
}
