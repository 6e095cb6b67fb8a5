import { execIn } from './container-exec.js';
import type { ExecResult } from './container-exec.js';
import type { DockerClient, DockerContainer } from './docker-client.js';

/** What an appliance needs from its fleet to act on Docker. */
export interface ApplianceDocker {
  docker: DockerClient;
  /** The zone network the appliance sits on. */
  network: string;
  /** Waits until the container's health check passes. */
  waitHealthy(containerId: string): Promise<void>;
  log(line: string): void;
}

/**
 * One containerised appliance of a harness fleet, with the faults real
 * appliances suffer: a crash (`kill`), an orderly shutdown (`stop`), a hang
 * (`pause`), a lost link (`partition`), a slow link (`slow`) and a tamper
 * response (`zeroize`). Each method returns once Docker has done it; `start`,
 * `unpause` and `heal` undo them.
 */
export class FleetAppliance {
  readonly id: string;
  readonly zone: string;
  readonly containerId: string;
  readonly #docker: ApplianceDocker;

  constructor(id: string, zone: string, containerId: string, docker: ApplianceDocker) {
    this.id = id;
    this.zone = zone;
    this.containerId = containerId;
    this.#docker = docker;
  }

  get #container(): DockerContainer {
    return this.#docker.docker.getContainer(this.containerId);
  }

  /** SIGKILL: the appliance vanishes mid-call, as in a power cut. Its token volume survives. */
  async kill(): Promise<void> {
    this.#docker.log(`fault: kill ${this.id}`);
    await this.#container.kill();
  }

  /** An orderly shutdown (SIGTERM, then SIGKILL after 10 s). */
  async stop(): Promise<void> {
    this.#docker.log(`fault: stop ${this.id}`);
    await this.#container.stop({ t: 10 });
  }

  /** Starts a killed or stopped appliance and waits until it serves again. */
  async start(): Promise<void> {
    this.#docker.log(`repair: start ${this.id}`);
    await this.#container.start();
    await this.#docker.waitHealthy(this.containerId);
  }

  /** Freezes every process of the appliance: TCP stays open, nothing answers (a hang). */
  async pause(): Promise<void> {
    this.#docker.log(`fault: pause ${this.id}`);
    await this.#container.pause();
  }

  /** Thaws a paused appliance. */
  async unpause(): Promise<void> {
    this.#docker.log(`repair: unpause ${this.id}`);
    await this.#container.unpause();
  }

  /** Disconnects the appliance from its zone network: packets to it go nowhere. */
  async partition(): Promise<void> {
    this.#docker.log(`fault: partition ${this.id}`);
    await this.#docker.docker.getNetwork(this.#docker.network).disconnect({ Container: this.containerId, Force: true });
  }

  /** Reconnects a partitioned appliance under its own name. */
  async heal(): Promise<void> {
    this.#docker.log(`repair: heal ${this.id}`);
    await this.#docker.docker.getNetwork(this.#docker.network).connect({ Container: this.containerId, EndpointConfig: { Aliases: [this.id] } });
  }

  /**
   * Delays every PKCS#11 exchange on the appliance's link by `ms` in each
   * direction (0 removes the delay). The node's TCP front is a relay that can
   * hold bytes back; this kernel has no netem.
   */
  async slow(ms: number): Promise<void> {
    if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) throw new RangeError(`slow: ms must be an integer from 0 to 60000, got ${String(ms)}`);
    this.#docker.log(`fault: slow ${this.id} by ${String(ms)} ms`);
    await this.#exec(['hsm-node', 'link-delay', String(ms)]);
  }

  /** Tamper response: the node wipes its token and initialises it again, empty, with a new serial. */
  async zeroize(): Promise<string> {
    this.#docker.log(`fault: zeroize ${this.id}`);
    return this.#exec(['hsm-node', 'zeroize']);
  }

  /** The container's output (the node's RFC 5424 events). */
  async logs(): Promise<string> {
    const buffer = await this.#container.logs({ stdout: true, stderr: true, follow: false });
    return buffer.toString('utf8');
  }

  /** Runs `command` (argv) inside the appliance container, whatever its exit status. */
  run(command: readonly string[]): Promise<ExecResult> {
    return execIn(this.#container, command);
  }

  async #exec(command: string[]): Promise<string> {
    const { exitCode, output } = await execIn(this.#container, command);
    if (exitCode !== 0) throw new Error(`${command.join(' ')} on ${this.id} exited with ${String(exitCode)}: ${output}`);
    return output;
  }
}
