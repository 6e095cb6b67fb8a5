import type { BrokerClient } from '@hsm-broker/client';
import { runCommand, type CommandRunner } from './command-runner.js';
import { DockerFaultDriver } from './docker-fault-driver.js';
import type { FaultDriver, FleetTopology } from './fault-driver.js';
import { InjectionFaultDriver } from './injection-fault-driver.js';

/** The kinds of fleet a rehearsal can break. */
export const targetKinds = ['injection', 'docker', 'testcontainers'] as const;

/**
 * Where faults go: the broker's own fault injection (any broker started with
 * `HSMB_FAULT_INJECTION=1`), the containers of a compose project, or a
 * testcontainers fleet, whose harness passes its own driver to the runner.
 */
export type FaultTarget =
  | { kind: 'injection' }
  | { kind: 'docker'; project: string; brokerService?: string; zeroizeCommand?: readonly string[] }
  | { kind: 'testcontainers' };

/** The broker's appliances and zones, which every driver aims at. */
export async function readTopology(client: BrokerClient): Promise<FleetTopology> {
  const status = await client.getFleetStatus({}, { deadlineMs: 10_000 });
  return { appliances: status.appliances.map((appliance) => ({ id: appliance.id, zone: appliance.zone })) };
}

/**
 * The driver for a target. A testcontainers fleet lives inside the test
 * process that started it, so its harness hands its driver to the runner
 * (`driver`); from the command line there is none to reach.
 */
export function openFaultDriver(
  target: FaultTarget,
  client: BrokerClient,
  topology: FleetTopology,
  options: { run?: CommandRunner; driver?: FaultDriver } = {},
): FaultDriver {
  if (options.driver !== undefined) return options.driver;
  switch (target.kind) {
    case 'injection':
      return new InjectionFaultDriver(client, topology);
    case 'docker':
      return new DockerFaultDriver(options.run ?? runCommand, topology, {
        project: target.project,
        ...(target.brokerService === undefined ? {} : { brokerService: target.brokerService }),
        ...(target.zeroizeCommand === undefined ? {} : { zeroizeCommand: target.zeroizeCommand }),
      });
    case 'testcontainers':
      throw new Error(
        'a testcontainers fleet is driven by the test that starts it: pass its fault driver to runGameDay/runChaos; from the command line use --target injection or docker',
      );
  }
}
