import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { recordRoutedCalls } from './testing/routed-calls.js';

// routing.zonePriority and routing.preferLocalZone, seen in which appliance
// answered each call. Probes are rare so they never hold a worker, and calls
// go one at a time, so every choice is the router's preference alone.

const sign = { keyId: 'z/ec', message: Buffer.from('m'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };

async function withBroker(routing: Record<string, unknown>, body: (t: TestBroker) => Promise<void>): Promise<void> {
  const t = await startTestBroker({ env: { HSMB_WORKERS_PER_APPLIANCE: '1' }, config: { routing: { healthIntervalMs: 600_000, ...routing } } });
  try {
    await t.clients.keys.createKey({ keyId: 'z/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
    await body(t);
  } finally {
    await t.dispose();
  }
}

async function answeredBy(t: TestBroker, calls: number): Promise<Map<string, number>> {
  const routed = recordRoutedCalls(t.broker.fleet);
  for (let i = 0; i < calls; i++) await t.clients.crypto.sign(sign);
  assert.equal(routed.calls.length, calls);
  return routed.answeredBy();
}

describe('zone preference on a 3x1 fleet (local zone az-a)', { timeout: 600_000 }, () => {
  it('routing.zonePriority picks the zone that serves when the local zone cannot', async () => {
    await withBroker({ zonePriority: ['az-c'] }, async (t) => {
      await t.clients.fleet.drainAppliance({ applianceId: 'hsm-a1' });
      const served = await answeredBy(t, 30);
      // Without the priority, zones follow in name order and az-b would serve.
      assert.deepEqual([...served], [['hsm-c1', 30]], JSON.stringify([...served]));
    });
  });

  it('routing.preferLocalZone: true keeps traffic local; false spreads it over every zone', async () => {
    await withBroker({}, async (t) => {
      const served = await answeredBy(t, 30);
      assert.deepEqual([...served], [['hsm-a1', 30]], `local first: ${JSON.stringify([...served])}`);
    });
    await withBroker({ preferLocalZone: false }, async (t) => {
      // One level for all zones: the local zone no longer wins by rank, the
      // least loaded × fastest of two random appliances does.
      const served = await answeredBy(t, 60);
      const elsewhere = (served.get('hsm-b1') ?? 0) + (served.get('hsm-c1') ?? 0);
      assert.ok(elsewhere >= 10, `other zones serve too: ${JSON.stringify([...served])}`);
    });
  });
});
