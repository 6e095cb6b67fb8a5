import { describeFault, type FaultAction, type FaultKindName } from './fault-action.js';
import type { CommandRunner } from './command-runner.js';
import { appliancesInZone, UnsupportedFaultError, type FaultDriver, type FleetTopology } from './fault-driver.js';

/** Labels docker compose (v2 and 1.29 alike) puts on what it creates. */
const projectLabel = 'com.docker.compose.project';
const serviceLabel = 'com.docker.compose.service';

/** How to find and break a compose fleet. */
export interface DockerFaultDriverOptions {
  /** The compose project (`docker compose -p`, by default the folder name). */
  project: string;
  /** The broker's compose service, for `restartBroker` (default `broker`). */
  brokerService?: string;
  /**
   * The command run inside an appliance container to zeroize it (wipe and
   * re-initialise its token), as argv. Default `['hsm-node', 'zeroize']`.
   */
  zeroizeCommand?: readonly string[];
  /** The docker CLI (default `docker`). */
  docker?: string;
}

/**
 * A {@link FaultDriver} for the compose fleet: acts on containers found by
 * their compose labels (project and service name, which is the appliance id)
 * through the docker CLI. Partitions disconnect a container from every
 * network of the project it is on and reconnect it with its service name as
 * alias, so that the broker resolves it again after `heal`.
 */
export class DockerFaultDriver implements FaultDriver {
  readonly name = 'docker';
  readonly #run: CommandRunner;
  readonly #topology: FleetTopology;
  readonly #project: string;
  readonly #brokerService: string;
  readonly #zeroize: readonly string[];
  readonly #docker: string;
  /** Container id by service, looked up once. */
  readonly #containers = new Map<string, string>();
  /** Networks each partitioned service was taken off, to put it back. */
  readonly #partitioned = new Map<string, string[]>();
  /** Services this driver stopped, killed or paused. */
  readonly #stopped = new Set<string>();
  readonly #paused = new Set<string>();

  constructor(run: CommandRunner, topology: FleetTopology, options: DockerFaultDriverOptions) {
    this.#run = run;
    this.#topology = topology;
    this.#project = options.project;
    this.#brokerService = options.brokerService ?? 'broker';
    this.#zeroize = options.zeroizeCommand ?? ['hsm-node', 'zeroize'];
    this.#docker = options.docker ?? 'docker';
  }

  unsupported(kind: FaultKindName): string | undefined {
    return kind === 'slow'
      ? 'slow needs a delaying TCP proxy on the appliance link, which the compose fleet does not have (this kernel has no netem); run it against a testcontainers or injection target'
      : undefined;
  }

  explain(action: FaultAction): string {
    switch (action.kind) {
      case 'partition':
        return `docker network disconnect (every ${this.#project} network) ${action.appliance}`;
      case 'heal':
        return `docker network connect --alias ${action.appliance} ... ${action.appliance}`;
      case 'zeroize':
        return `docker exec ${action.appliance} ${this.#zeroize.join(' ')}`;
      case 'killZone':
      case 'partitionZone':
        return `${action.kind === 'killZone' ? 'docker kill' : 'docker network disconnect'} ${appliancesInZone(this.#topology, action.zone).join(' ')}`;
      case 'clear':
        return 'start, unpause and reconnect everything this run broke';
      case 'restartBroker':
        return `docker restart ${this.#brokerService}`;
      case 'slow':
        return `not possible: ${this.unsupported('slow') ?? ''}`;
      case 'kill':
      case 'stop':
      case 'start':
      case 'pause':
      case 'unpause':
        return `docker ${action.kind} ${action.appliance}`;
    }
  }

  async apply(action: FaultAction): Promise<void> {
    switch (action.kind) {
      case 'kill':
      case 'stop':
        await this.#exec(action.kind, await this.#container(action.appliance));
        this.#stopped.add(action.appliance);
        this.#paused.delete(action.appliance);
        return;
      case 'start':
        await this.#exec('start', await this.#container(action.appliance));
        this.#stopped.delete(action.appliance);
        return;
      case 'pause':
        await this.#exec('pause', await this.#container(action.appliance));
        this.#paused.add(action.appliance);
        return;
      case 'unpause':
        await this.#exec('unpause', await this.#container(action.appliance));
        this.#paused.delete(action.appliance);
        return;
      case 'partition':
        return this.#partition(action.appliance);
      case 'heal':
        return this.#heal(action.appliance);
      case 'zeroize':
        await this.#exec('exec', await this.#container(action.appliance), ...this.#zeroize);
        return;
      case 'killZone':
        for (const id of this.#zone(action.zone)) await this.apply({ kind: 'kill', appliance: id });
        return;
      case 'partitionZone':
        for (const id of this.#zone(action.zone)) await this.apply({ kind: 'partition', appliance: id });
        return;
      case 'restartBroker':
        await this.#exec('restart', await this.#container(this.#brokerService));
        return;
      case 'clear':
        return this.restore();
      case 'slow':
        throw new UnsupportedFaultError(this.unsupported('slow') ?? describeFault(action));
    }
  }

  async restore(): Promise<void> {
    const failures: string[] = [];
    const attempt = async (step: () => Promise<void>): Promise<void> => {
      try {
        await step();
      } catch (error: unknown) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    };
    for (const service of [...this.#paused]) await attempt(() => this.apply({ kind: 'unpause', appliance: service }));
    for (const service of [...this.#stopped]) await attempt(() => this.apply({ kind: 'start', appliance: service }));
    for (const service of [...this.#partitioned.keys()]) await attempt(() => this.#heal(service));
    if (failures.length > 0) throw new Error(`could not restore the fleet: ${failures.join('; ')}`);
  }

  #zone(zone: string): string[] {
    const ids = appliancesInZone(this.#topology, zone);
    if (ids.length === 0) throw new UnsupportedFaultError(`zone '${zone}' has no appliances`);
    return ids;
  }

  async #partition(service: string): Promise<void> {
    if (this.#partitioned.has(service)) return;
    const container = await this.#container(service);
    const networks = await this.#networks(container);
    if (networks.length === 0) throw new Error(`${service} is on no network of project ${this.#project}`);
    // Remembered before the first disconnect, so that a failure half-way
    // still heals what was done.
    this.#partitioned.set(service, networks);
    for (const network of networks) await this.#exec('network', 'disconnect', network, container);
  }

  async #heal(service: string): Promise<void> {
    const networks = this.#partitioned.get(service);
    if (networks === undefined) return;
    const container = await this.#container(service);
    for (const network of networks) {
      await this.#exec('network', 'connect', '--alias', service, network, container);
    }
    this.#partitioned.delete(service);
  }

  /** The project's networks a container is attached to. */
  async #networks(container: string): Promise<string[]> {
    const inspected = await this.#exec(
      'inspect',
      '--format',
      '{{range $name, $net := .NetworkSettings.Networks}}{{$name}}\n{{end}}',
      container,
    );
    const attached = inspected.split('\n').map((line) => line.trim()).filter((line) => line !== '');
    const listed = await this.#exec(
      'network',
      'ls',
      '--filter',
      `label=${projectLabel}=${this.#project}`,
      '--format',
      '{{.Name}}',
    );
    const ofProject = new Set(listed.split('\n').map((line) => line.trim()).filter((line) => line !== ''));
    return attached.filter((network) => ofProject.has(network));
  }

  async #container(service: string): Promise<string> {
    const known = this.#containers.get(service);
    if (known !== undefined) return known;
    const listed = await this.#exec(
      'ps',
      '--all',
      '--quiet',
      '--filter',
      `label=${projectLabel}=${this.#project}`,
      '--filter',
      `label=${serviceLabel}=${service}`,
    );
    const ids = listed.split('\n').map((line) => line.trim()).filter((line) => line !== '');
    if (ids.length !== 1) {
      throw new Error(
        `expected one container of service '${service}' in compose project '${this.#project}', found ${String(ids.length)}`,
      );
    }
    const id = ids[0] ?? '';
    this.#containers.set(service, id);
    return id;
  }

  /** Runs `docker ARGS`; a non-zero exit is an error carrying docker's own message. */
  async #exec(...args: string[]): Promise<string> {
    const result = await this.#run(this.#docker, args);
    if (result.status !== 0) {
      throw new Error(`${this.#docker} ${args.join(' ')} exited ${String(result.status)}: ${result.stderr.trim()}`);
    }
    return result.stdout;
  }
}
