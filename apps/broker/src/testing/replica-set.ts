import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBroker } from './broker-harness.js';
import type { TestBroker, TestBrokerOptions } from './broker-harness.js';

/** Several broker replicas on one PostgreSQL database and one SoftHSM fleet. */
export interface ReplicaSet {
  replicas: TestBroker[];
  /** Starts one more replica on the same fleet and database. */
  add(): Promise<TestBroker>;
  dispose(): Promise<void>;
}

const applianceIds = [
  { id: 'hsm-a1', zone: 'az-a' },
  { id: 'hsm-b1', zone: 'az-b' },
  { id: 'hsm-c1', zone: 'az-c' },
];

/**
 * Starts `count` replicas sharing `storeUrl`. The first provisions the
 * embedded 3x1 SoftHSM fleet; the others reach the same tokens as
 * configured appliances (each replica has its own worker processes and its
 * own data directory, as separate hosts would), with PIN files of their own.
 * @internal
 */
export async function startReplicaSet(count: number, storeUrl: string, options: TestBrokerOptions = {}): Promise<ReplicaSet> {
  const env = { ...options.env, HSMB_STORE: storeUrl };
  const first = await startTestBroker({ ...options, env });
  const pinsDir = mkdtempSync(join(tmpdir(), 'hsmb-replica-pins-'));
  const appliances = applianceIds.map(({ id, zone }) => {
    const pins = JSON.parse(readFileSync(join(first.dataDir, 'secrets', `${id}.json`), 'utf8')) as { userPin: string; soPin: string };
    writeFileSync(join(pinsDir, `${id}.pin`), pins.userPin, { mode: 0o600 });
    writeFileSync(join(pinsDir, `${id}.so-pin`), pins.soPin, { mode: 0o600 });
    return {
      id,
      zone,
      uri: `pkcs11:token=${id}`,
      module: '/usr/lib/softhsm/libsofthsm2.so',
      pin: { file: join(pinsDir, `${id}.pin`) },
      soPin: { file: join(pinsDir, `${id}.so-pin`) },
      env: { SOFTHSM2_CONF: join(first.dataDir, 'fleet', id, 'softhsm2.conf') },
    };
  });
  const replicas = [first];
  const add = async (): Promise<TestBroker> => {
    const replica = await startTestBroker({ ...options, env, config: { ...options.config, appliances } });
    replicas.push(replica);
    return replica;
  };
  while (replicas.length < count) await add();
  return {
    replicas,
    add,
    async dispose() {
      // The replicas on configured appliances first: the first one owns the tokens.
      for (const replica of replicas.slice(1).reverse()) await replica.dispose();
      await first.dispose();
      rmSync(pinsDir, { recursive: true, force: true });
    },
  };
}
