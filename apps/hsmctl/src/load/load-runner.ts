import { fork, type ChildProcess } from 'node:child_process';
import type { BrokerClient } from '@hsm-broker/client';
import type { CallRecord } from './call-history.js';
import type { BrokerConnection } from './broker-connection.js';
import type { LoadCommand, LoadEvent } from './load-process-protocol.js';
import { scaleRates, type LoadProfile } from './load-profile.js';
import { MixedLoad, type LoadTotals } from './mixed-load.js';

/** A mixed load in this process or spread over forked ones; the caller sees one stream of records. */
export interface LoadRunner {
  /** Creates the load's keys; resolves when every process is ready. */
  prepare(): Promise<void>;
  start(): void;
  /** Stops issuing, waits for calls in flight, and sums the totals. */
  stop(): Promise<LoadTotals>;
}

/** What a {@link LoadRunner} needs. */
export interface LoadRunnerOptions {
  profile: LoadProfile;
  /** Prefix of the keys the load creates; each process adds `/p<N>`. */
  prefix: string;
  onRecord: (record: CallRecord) => void;
  /** The client for a single in-process load. */
  client: BrokerClient;
  /** How forked processes connect (several processes only). */
  connection: BrokerConnection;
}

/**
 * One Node process can carry about 1.6–2.4k gRPC calls a second (DESIGN.md);
 * beyond that the load generator, not the broker, would be measured. With
 * `profile.processes` above one, each forked process runs its share of the
 * rates on its own client and streams its records back.
 */
export function createLoadRunner(options: LoadRunnerOptions): LoadRunner {
  const count = options.profile.processes;
  if (count <= 1) {
    const load = new MixedLoad(options.client, options.profile, {
      prefix: `${options.prefix}/p0`,
      onRecord: options.onRecord,
    });
    return { prepare: () => load.prepare(), start: () => load.start(), stop: () => load.stop() };
  }
  return new ForkedLoad(options);
}

class ForkedLoad implements LoadRunner {
  readonly #options: LoadRunnerOptions;
  readonly #children: ChildProcess[] = [];

  constructor(options: LoadRunnerOptions) {
    this.#options = options;
  }

  async prepare(): Promise<void> {
    const { profile } = this.#options;
    const share: LoadProfile = { ...profile, rates: scaleRates(profile.rates, 1 / profile.processes), processes: 1 };
    const ready: Promise<undefined>[] = [];
    for (let index = 0; index < profile.processes; index += 1) {
      // The environment is passed as it is: the child is hsmctl itself.
      const child = fork(new URL('./load-process-main.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.#children.push(child);
      child.on('message', (event: LoadEvent) => {
        if (event.type === 'records') for (const record of event.records) this.#options.onRecord(record);
      });
      ready.push(this.#await(child, 'prepared'));
      this.#send(child, {
        type: 'prepare',
        connection: this.#options.connection,
        profile: share,
        prefix: `${this.#options.prefix}/p${String(index)}`,
        process: index,
      });
    }
    try {
      await Promise.all(ready);
    } catch (error: unknown) {
      for (const child of this.#children) child.kill();
      throw error;
    }
  }

  start(): void {
    for (const child of this.#children) this.#send(child, { type: 'start' });
  }

  async stop(): Promise<LoadTotals> {
    const totals = await Promise.all(
      this.#children.map(async (child) => {
        const stopped = this.#await(child, 'stopped');
        this.#send(child, { type: 'stop' });
        return stopped;
      }),
    );
    return totals.reduce((sum, each) => ({ issued: sum.issued + each.issued, shed: sum.shed + each.shed }), { issued: 0, shed: 0 });
  }

  #send(child: ChildProcess, command: LoadCommand): void {
    child.send(command);
  }

  /** Resolves with the totals of `stopped` (or nothing for `prepared`); rejects when the child fails or exits first. */
  #await(child: ChildProcess, type: 'prepared'): Promise<undefined>;
  #await(child: ChildProcess, type: 'stopped'): Promise<LoadTotals>;
  #await(child: ChildProcess, type: 'prepared' | 'stopped'): Promise<LoadTotals | undefined> {
    return new Promise<LoadTotals | undefined>((resolve, reject) => {
      const onMessage = (event: LoadEvent): void => {
        if (event.type === 'failed') {
          cleanup();
          reject(new Error(`load process ${String(child.pid)}: ${event.message}`));
        } else if (event.type === type) {
          cleanup();
          resolve(event.type === 'stopped' ? event.totals : undefined);
        }
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`load process ${String(child.pid)} exited (${String(code)}) before it was ${type}`));
      };
      const cleanup = (): void => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  }
}
