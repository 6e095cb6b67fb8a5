import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execIn } from './container-exec.js';
import type { ExecResult } from './container-exec.js';
import type { DockerClient } from './docker-client.js';
import { createBrokerClient } from '@hsm-broker/client';
import type { BrokerClient, BrokerClientOptions } from '@hsm-broker/client';
import { composeLabels, composeProjectOf, fleetLabel, fleetLabels, ownerGone } from './container-labels.js';
import { fleetBrokerConfig, fleetMembers, zoneName } from './fleet-broker-config.js';
import { FleetAppliance } from './fleet-appliance.js';
import { assertLoopbackOnly, loopbackContainerClass } from './loopback-container.js';
import { fleetImages, writeFleetSecrets } from './fleet-tooling.js';

// No Ryuk: its image cannot be pulled here, and this harness removes what it
// made itself (and what a crashed earlier run left, found by label).
process.env['TESTCONTAINERS_RYUK_DISABLED'] ??= 'true';

/** The shape of a harness fleet and the broker settings to run it with. */
export interface ContainerFleetOptions {
  /** 1 to 6 zones (az-a, az-b, …); 3 by default. */
  zones?: number;
  /** 1 to 4 appliances per zone; 2 by default. */
  appliancesPerZone?: number;
  /** Top-level broker settings merged over the harness defaults (routing, timeouts, durability). */
  brokerSettings?: Record<string, unknown>;
  /** Progress lines (image builds, faults); silent by default. */
  log?: (line: string) => void;
}

const brokerPort = 50051;
const healthyWithinMs = 240_000;

/**
 * A broker container and SoftHSM appliance containers on one Docker network
 * per zone (the broker on all of them), the broker's gRPC port published on
 * 127.0.0.1 only. Everything is removed by `dispose()` (or `await using`), also
 * when a test fails.
 */
export class ContainerFleet implements AsyncDisposable {
  /** `127.0.0.1:PORT` of the broker's gRPC port. */
  readonly brokerAddress: string;
  readonly appliances: readonly FleetAppliance[];
  readonly zones: readonly string[];
  readonly runId: string;
  /**
   * The compose project name the fleet's containers and networks are labelled
   * with (`com.docker.compose.project`; services are the appliance ids and
   * `broker`), so `hsmctl chaos|gameday --target docker --compose-project`
   * can break this fleet as it breaks a compose one.
   */
  readonly composeProject: string;
  readonly #docker: DockerClient;
  readonly #brokerId: string;
  readonly #secretsDir: string;
  readonly #log: (line: string) => void;
  #disposed = false;

  /** @internal */
  constructor(parts: {
    runId: string;
    docker: DockerClient;
    brokerId: string;
    brokerAddress: string;
    networks: Map<string, string>;
    appliances: FleetAppliance[];
    secretsDir: string;
    log: (line: string) => void;
  }) {
    this.runId = parts.runId;
    this.composeProject = composeProjectOf(parts.runId);
    this.#docker = parts.docker;
    this.#brokerId = parts.brokerId;
    this.brokerAddress = parts.brokerAddress;
    this.appliances = parts.appliances;
    this.zones = [...parts.networks.keys()];
    this.#secretsDir = parts.secretsDir;
    this.#log = parts.log;
  }

  /** The appliance named `id` (hsm-a1, …). */
  appliance(id: string): FleetAppliance {
    const found = this.appliances.find((appliance) => appliance.id === id);
    if (!found) throw new RangeError(`no appliance ${id} in this fleet (${this.appliances.map((a) => a.id).join(', ')})`);
    return found;
  }

  /** The appliances of one zone. */
  zoneAppliances(zone: string): FleetAppliance[] {
    const members = this.appliances.filter((appliance) => appliance.zone === zone);
    if (members.length === 0) throw new RangeError(`no zone ${zone} in this fleet (${this.zones.join(', ')})`);
    return members;
  }

  /** Disconnects every appliance of `zone` from the zone's network (the broker keeps its side). */
  async partitionZone(zone: string): Promise<void> {
    await Promise.all(this.zoneAppliances(zone).map((appliance) => appliance.partition()));
  }

  /** Reconnects every appliance of a partitioned zone. */
  async healZone(zone: string): Promise<void> {
    await Promise.all(this.zoneAppliances(zone).map((appliance) => appliance.heal()));
  }

  /** SIGKILLs every appliance of `zone`. */
  async killZone(zone: string): Promise<void> {
    await Promise.all(this.zoneAppliances(zone).map((appliance) => appliance.kill()));
  }

  /** Starts every appliance of a killed zone and waits until they serve. */
  async startZone(zone: string): Promise<void> {
    await Promise.all(this.zoneAppliances(zone).map((appliance) => appliance.start()));
  }

  /** SIGKILLs every appliance of the fleet. */
  async killAll(): Promise<void> {
    await Promise.all(this.appliances.map((appliance) => appliance.kill()));
  }

  /** Starts every appliance of the fleet and waits until they serve. */
  async startAll(): Promise<void> {
    await Promise.all(this.appliances.map((appliance) => appliance.start()));
  }

  /** When the broker container's current process started, and how often Docker restarted it. */
  async brokerProcess(): Promise<{ startedAt: string; restartCount: number }> {
    const inspected = await this.#docker.getContainer(this.#brokerId).inspect();
    return { startedAt: inspected.State.StartedAt, restartCount: inspected.RestartCount };
  }

  /** Restarts the broker container (SIGTERM, then start) and waits until it reports SERVING. */
  async restartBroker(): Promise<void> {
    this.#log('fault: restart broker');
    await this.#docker.getContainer(this.#brokerId).restart({ t: 10 });
    await waitHealthy(this.#docker, this.#brokerId);
  }

  /** Runs `command` (argv) inside the broker container, whatever its exit status. */
  execInBroker(command: readonly string[]): Promise<ExecResult> {
    return execIn(this.#docker.getContainer(this.#brokerId), command);
  }

  /** A client of the broker; close it when done. */
  client(options: Partial<BrokerClientOptions> = {}): BrokerClient {
    return createBrokerClient({ address: this.brokerAddress, ...options });
  }

  /** The broker container's output (JSON log lines). */
  async brokerLogs(): Promise<string> {
    const buffer = await this.#docker.getContainer(this.#brokerId).logs({ stdout: true, stderr: true, follow: false });
    return buffer.toString('utf8');
  }

  /** Removes every container (with its volumes) and network of this fleet, and its secrets. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await removeFleet(this.#docker, (labels) => labels?.[fleetLabel] === this.runId);
    rmSync(this.#secretsDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/** Removes containers (and their anonymous volumes) and networks whose labels match. */
async function removeFleet(docker: DockerClient, matches: (labels: Record<string, string> | undefined) => boolean): Promise<number> {
  const containers = (await docker.listContainers({ all: true, filters: { label: [fleetLabel] } })).filter((info) => matches(info.Labels));
  await Promise.all(containers.map((info) => docker.getContainer(info.Id).remove({ force: true, v: true }).catch(() => undefined)));
  const networks = (await docker.listNetworks({ filters: { label: [fleetLabel] } })).filter((info) => matches(info.Labels));
  await Promise.all(networks.map((info) => docker.getNetwork(info.Id).remove().catch(() => undefined)));
  return containers.length + networks.length;
}

async function waitHealthy(docker: DockerClient, containerId: string): Promise<void> {
  const deadline = Date.now() + healthyWithinMs;
  for (;;) {
    const state = (await docker.getContainer(containerId).inspect()).State;
    if (state.Health?.Status === 'healthy') return;
    if (!state.Running && !state.Restarting && !state.Paused) {
      throw new Error(`container ${containerId.slice(0, 12)} exited (${String(state.ExitCode)}) before it became healthy`);
    }
    if (Date.now() > deadline) throw new Error(`container ${containerId.slice(0, 12)} not healthy within ${String(healthyWithinMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function checkShape(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name}: expected an integer from 1 to ${String(max)}, got ${String(value)}`);
  return value;
}

/**
 * Starts a containerised fleet: builds the images if this tree has not built
 * them yet, removes what crashed earlier runs left behind, then starts the
 * appliances (one network per zone) and the broker on all zone networks, and
 * resolves once the broker's gRPC health check says SERVING.
 *
 * ```ts
 * await using fleet = await startContainerFleet({ zones: 3, appliancesPerZone: 2 });
 * await fleet.appliance('hsm-a1').kill();
 * ```
 */
export async function startContainerFleet(options: ContainerFleetOptions = {}): Promise<ContainerFleet> {
  const zones = checkShape('zones', options.zones ?? 3, 6);
  const perZone = checkShape('appliancesPerZone', options.appliancesPerZone ?? 2, 4);
  const log = options.log ?? (() => undefined);
  const images = await fleetImages(log);
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
  const docker = (await getContainerRuntimeClient()).container.dockerode;
  const removed = await removeFleet(docker, ownerGone);
  if (removed > 0) log(`harness: removed ${String(removed)} containers and networks left by earlier runs`);

  const runId = randomBytes(4).toString('hex');
  const labels = { ...fleetLabels(runId), [composeLabels.project]: composeProjectOf(runId) };
  const members = fleetMembers(zones, perZone);
  const secretsDir = mkdtempSync(join(tmpdir(), `hsmb-fleet-${runId}-`));
  const networks = new Map<string, string>();
  const appliances: FleetAppliance[] = [];
  try {
    await writeFleetSecrets(secretsDir, ['broker', ...members.map((member) => member.id)]);
    const network = async (name: string, internal: boolean): Promise<string> => {
      const created = await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: internal, Labels: labels, CheckDuplicate: true });
      return created.id;
    };
    for (let z = 0; z < zones; z++) networks.set(zoneName(z), await network(`hsmb-${runId}-${zoneName(z)}`, true));
    await network(`hsmb-${runId}-front`, false);
    const secret = (name: string, target = name): { source: string; target: string; mode: number } => ({ source: join(secretsDir, name), target: `/run/secrets/${target}`, mode: 0o400 });

    const started = await Promise.all(
      members.map((member) =>
        new GenericContainer(images.hsmNode)
          .withName(`hsmb-${runId}-${member.id}`)
          .withHostname(member.id)
          .withNetworkMode(`hsmb-${runId}-${member.zone}`)
          .withNetworkAliases(member.id)
          .withLabels({ ...labels, [composeLabels.service]: member.id })
          .withEnvironment({
            HSM_NODE_ID: member.id,
            HSM_NODE_SO_PIN_FILE: '/run/secrets/so.pin',
            HSM_NODE_USER_PIN_FILE: '/run/secrets/user.pin',
            HSM_NODE_TLS_CA: '/run/secrets/fleet-ca.pem',
            HSM_NODE_TLS_CERT: `/run/secrets/${member.id}.pem`,
            HSM_NODE_TLS_KEY: `/run/secrets/${member.id}.key`,
            HSM_NODE_LINK_RELAY: '1',
          })
          .withCopyFilesToContainer([secret('so.pin'), secret('user.pin'), secret('fleet-ca.pem'), secret(`${member.id}.pem`), secret(`${member.id}.key`)])
          .withWaitStrategy(Wait.forHealthCheck())
          .withStartupTimeout(healthyWithinMs)
          .start(),
      ),
    );
    const applianceDocker = (zone: string): ConstructorParameters<typeof FleetAppliance>[3] => ({
      docker,
      network: networks.get(zone) ?? '',
      waitHealthy: (id) => waitHealthy(docker, id),
      log,
    });
    members.forEach((member, index) => {
      const container = started[index];
      if (container) appliances.push(new FleetAppliance(member.id, member.zone, container.getId(), applianceDocker(member.zone)));
    });
    log(`harness: ${String(appliances.length)} appliances serving in ${String(zones)} zones`);

    const configFile = join(secretsDir, 'broker.yaml');
    writeFileSync(configFile, fleetBrokerConfig(members, options.brokerSettings), { mode: 0o644 });
    const port = await freePort();
    // The broker waits for a go file: its zone networks are connected first,
    // so that no appliance looks unreachable at start-up.
    const LoopbackContainer = loopbackContainerClass(GenericContainer);
    const broker = await new LoopbackContainer(images.broker)
      .withLoopbackPort(brokerPort, port)
      .withName(`hsmb-${runId}-broker`)
      .withNetworkMode(`hsmb-${runId}-front`)
      .withNetworkAliases('broker')
      .withLabels({ ...labels, [composeLabels.service]: 'broker' })
      .withEnvironment({ HSMB_CONFIG: '/etc/hsm-broker/broker.yaml' })
      .withCopyFilesToContainer([
        { source: configFile, target: '/etc/hsm-broker/broker.yaml', mode: 0o444 },
        secret('user.pin'),
        secret('fleet-ca.pem'),
        secret('broker.pem'),
        secret('broker.key'),
      ])
      .withEntrypoint(['/bin/sh', '-c', 'echo waiting for zone networks; while [ ! -e /etc/hsm-broker/go ]; do sleep 0.2; done; exec /usr/local/bin/broker-entrypoint'])
      .withWaitStrategy(Wait.forLogMessage('waiting for zone networks'))
      .start();
    assertLoopbackOnly((await docker.getContainer(broker.getId()).inspect()).NetworkSettings.Ports, brokerPort);
    for (const [zone, id] of networks) {
      await docker.getNetwork(id).connect({ Container: broker.getId(), EndpointConfig: { Aliases: ['broker'] } });
      log(`harness: broker connected to ${zone}`);
    }
    await broker.exec(['touch', '/etc/hsm-broker/go']);
    await waitHealthy(docker, broker.getId());
    log(`harness: broker serving on 127.0.0.1:${String(port)}`);
    return new ContainerFleet({ runId, docker, brokerId: broker.getId(), brokerAddress: `127.0.0.1:${String(port)}`, networks, appliances, secretsDir, log });
  } catch (error: unknown) {
    await removeFleet(docker, (found) => found?.[fleetLabel] === runId);
    rmSync(secretsDir, { recursive: true, force: true });
    throw error;
  }
}
