import { FaultKind, type BrokerClient } from '@hsm-broker/client';
import { describeFault, type FaultAction, type FaultKindName } from './fault-action.js';
import { appliancesInZone, UnsupportedFaultError, type FaultDriver, type FleetTopology } from './fault-driver.js';

/**
 * What each action becomes when the only lever is the broker's own fault
 * injection (InjectFault acts inside the appliance's worker processes). A
 * killed or stopped appliance is one whose workers die on every call; a paused
 * or partitioned one is one whose calls never return, which is how a hung
 * TCP peer looks from the broker; a slow one gets added latency. Undoing any
 * of them (and a `slow` of 0 ms) clears the appliance's injected faults, all of them at once:
 * ClearFaults has no finer grain.
 */
const injected: Partial<Record<FaultKindName, { kind: FaultKind; label: string }>> = {
  kill: { kind: FaultKind.CRASH, label: 'CRASH' },
  stop: { kind: FaultKind.CRASH, label: 'CRASH' },
  pause: { kind: FaultKind.HANG, label: 'HANG' },
  partition: { kind: FaultKind.HANG, label: 'HANG' },
  slow: { kind: FaultKind.LATENCY, label: 'LATENCY' },
  killZone: { kind: FaultKind.CRASH, label: 'CRASH' },
  partitionZone: { kind: FaultKind.HANG, label: 'HANG' },
};

const undoing: ReadonlySet<FaultKindName> = new Set(['start', 'unpause', 'heal']);

const cannot: Partial<Record<FaultKindName, string>> = {
  zeroize:
    'zeroize needs the token itself wiped, which injected faults cannot do; run it against a docker or testcontainers target',
  restartBroker:
    'restartBroker needs the broker process restarted from outside; run it against a docker or testcontainers target',
};

/**
 * A {@link FaultDriver} that works against any broker started with
 * `HSMB_FAULT_INJECTION=1`, through FleetService InjectFault / ClearFaults.
 */
export class InjectionFaultDriver implements FaultDriver {
  readonly name = 'injection';
  readonly #client: BrokerClient;
  readonly #topology: FleetTopology;

  constructor(client: BrokerClient, topology: FleetTopology) {
    this.#client = client;
    this.#topology = topology;
  }

  unsupported(kind: FaultKindName): string | undefined {
    return cannot[kind];
  }

  explain(action: FaultAction): string {
    if (action.kind === 'clear') return 'ClearFaults on every appliance';
    const reason = cannot[action.kind];
    if (reason !== undefined) return `not possible: ${reason}`;
    if ((undoing.has(action.kind) || (action.kind === 'slow' && action.ms === 0)) && 'appliance' in action) {
      return `ClearFaults on ${action.appliance}`;
    }
    const fault = injected[action.kind];
    const targets = this.#targets(action);
    const latency = action.kind === 'slow' ? ` ${String(action.ms)} ms` : '';
    return `${fault?.label ?? '?'}${latency} injected on ${targets.join(', ')}`;
  }

  async apply(action: FaultAction): Promise<void> {
    const reason = cannot[action.kind];
    if (reason !== undefined) throw new UnsupportedFaultError(reason);
    if (action.kind === 'clear') {
      await this.#client.clearFaults({ applianceId: '' });
      return;
    }
    if ((undoing.has(action.kind) || (action.kind === 'slow' && action.ms === 0)) && 'appliance' in action) {
      await this.#client.clearFaults({ applianceId: action.appliance });
      return;
    }
    const fault = injected[action.kind];
    if (fault === undefined) throw new UnsupportedFaultError(`no injected fault for ${describeFault(action)}`);
    for (const applianceId of this.#targets(action)) {
      await this.#client.injectFault({
        applianceId,
        kind: fault.kind,
        probability: 0,
        latencyMs: action.kind === 'slow' ? action.ms : 0,
        durationMs: 0,
      });
    }
  }

  async restore(): Promise<void> {
    // One ClearFaults for everything: also removes faults an interrupted
    // earlier run left behind.
    await this.#client.clearFaults({ applianceId: '' });
  }

  #targets(action: FaultAction): string[] {
    if ('appliance' in action) return [action.appliance];
    if ('zone' in action) {
      const ids = appliancesInZone(this.#topology, action.zone);
      if (ids.length === 0) throw new UnsupportedFaultError(`zone '${action.zone}' has no appliances`);
      return ids;
    }
    return [];
  }
}
