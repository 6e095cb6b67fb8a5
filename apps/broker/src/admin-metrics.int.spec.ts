import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { BreakerState } from '@hsm-broker/fleet';
import { FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker, statusOf } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';
import { scrape } from './testing/prometheus-text.js';
import type { Scrape } from './testing/prometheus-text.js';

// The admin listener as Prometheus and a load balancer see it: real HTTP
// (Node's fetch) against a real broker on SoftHSM. Figures are compared
// before and after load and faults, counted from events, never timed.

const quickRecovery = {
  timeouts: { callMs: 3000 },
  routing: { openMs: 300, maxOpenMs: 2000, healthIntervalMs: 100, probeTimeoutMs: 1000, slowStartMs: 0, consecutiveFailures: 3 },
};
const signRequest = { keyId: 'm/ec', message: Buffer.from('metrics sign load 7f3a'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every metric family the Metrics section asks for. */
const expectedFamilies = [
  'hsmb_rpc_requests_total',
  'hsmb_rpc_duration_seconds',
  'hsmb_appliance_requests_total',
  'hsmb_appliance_failures_total',
  'hsmb_appliance_call_duration_seconds',
  'hsmb_appliance_in_flight',
  'hsmb_appliance_queue_wait_seconds',
  'hsmb_appliance_breaker_state',
  'hsmb_appliance_breaker_ejections_total',
  'hsmb_appliance_worker_restarts_total',
  'hsmb_appliance_sessions',
  'hsmb_zone_healthy_appliances',
  'hsmb_zone_traffic_share_ratio',
  'hsmb_retries_total',
  'hsmb_hedges_total',
  'hsmb_retry_budget_refusals_total',
  'hsmb_replication_versions_missing',
  'hsmb_replication_orphans',
  'hsmb_reconciler_runs_total',
  'hsmb_reconciler_copies_total',
  'hsmb_keys',
];

async function getJson(address: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://${address}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Resolves when `applianceId`'s breaker enters `state` (or is in it already). */
function breakerReaches(t: TestBroker, applianceId: string, state: BreakerState): Promise<void> {
  const appliance = t.broker.fleet.appliance(applianceId);
  if (appliance.breaker.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    appliance.breaker.onStateChange((entered) => {
      if (entered === state) resolve();
    });
  });
}

describe('admin listener: metrics, health and readiness', { timeout: 600_000 }, () => {
  let t: TestBroker;
  let admin: string;

  before(async () => {
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '3x1', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, config: quickRecovery });
    assert.ok(t.broker.adminAddress, 'the admin listener is on by default');
    admin = t.broker.adminAddress;
    for (let attempt = 1; ; attempt++) {
      try {
        await t.clients.keys.createKey({ keyId: 'm/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
        break;
      } catch (error: unknown) {
        if (attempt === 3) throw error;
        await sleep(500);
      }
    }
  });

  after(async () => {
    await t.dispose();
  });

  it('listens on loopback and answers /healthz, /readyz, 404 and 405', async () => {
    assert.match(admin, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(await getJson(admin, '/healthz'), { status: 200, body: { alive: true } });
    const ready = await getJson(admin, '/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.equal(ready.body['ready'], true);
    assert.equal((await fetch(`http://${admin}/no-such-page`)).status, 404);
    assert.equal((await fetch(`http://${admin}/metrics`, { method: 'POST', body: 'x' })).status, 405);
  });

  it('names every metric by convention, each with HELP and TYPE', async () => {
    const scraped = await scrape(admin);
    for (const family of expectedFamilies) {
      assert.ok(scraped.help.get(family), `${family} has a # HELP`);
      assert.ok(scraped.type.get(family), `${family} has a # TYPE`);
    }
    for (const [family, kind] of scraped.type) {
      assert.match(family, /^hsmb_[a-z0-9_]+$/, `${family} has the hsmb_ prefix`);
      assert.ok(scraped.help.get(family), `${family} has a # HELP`);
      if (kind === 'counter') assert.match(family, /_total$/, `counter ${family} ends in _total`);
      // prom-client's own default gauge hsmb_nodejs_active_resources_total is the one exception.
      else if (!family.startsWith('hsmb_nodejs_')) assert.doesNotMatch(family, /_total$/, `${kind} ${family} does not end in _total`);
      if (kind === 'histogram' && !family.startsWith('hsmb_nodejs_')) assert.match(family, /_seconds$/, `histogram ${family} is in seconds`);
      assert.doesNotMatch(family, /_(ms|milliseconds|millis)(_|$)/, `${family} uses base units`);
    }
  });

  it('counts calls by method and code, and per appliance, after load', async () => {
    const before = await scrape(admin);
    const calls = 30;
    for (let i = 0; i < calls; i++) await t.clients.crypto.sign(signRequest);
    const refused = await statusOf(t.clients.crypto.sign({ ...signRequest, keyId: 'm/none' }));
    assert.equal(refused.code, status.NOT_FOUND);
    const after = await scrape(admin);
    const delta = (scrapeOf: (s: Scrape) => number): number => scrapeOf(after) - scrapeOf(before);

    assert.equal(delta((s) => s.sum('hsmb_rpc_requests_total', { method: 'Sign', code: 'OK' })), calls);
    assert.equal(delta((s) => s.sum('hsmb_rpc_requests_total', { method: 'Sign', code: 'NOT_FOUND' })), 1);
    assert.equal(delta((s) => s.sum('hsmb_rpc_duration_seconds_count', { method: 'Sign', code: 'OK' })), calls);
    assert.ok(delta((s) => s.sum('hsmb_rpc_duration_seconds_sum', { method: 'Sign', code: 'OK' })) > 0, 'latency is recorded');
    assert.equal(delta((s) => s.sum('hsmb_routed_calls_total', { operation: 'sign', result: 'answered' })), calls);
    assert.equal(delta((s) => s.sum('hsmb_zone_calls_answered_total')), calls);
    assert.equal(delta((s) => s.sum('hsmb_appliance_requests_total', { traffic: 'caller' })), calls);
    assert.equal(delta((s) => s.sum('hsmb_appliance_call_duration_seconds_count')), calls);
    assert.equal(delta((s) => s.sum('hsmb_appliance_queue_wait_seconds_count')), calls);
    assert.ok(delta((s) => s.sum('hsmb_appliance_requests_total', { traffic: 'background' })) > 0, 'probes are counted as background traffic');
    const shares = after.samples.filter((sample) => sample.name === 'hsmb_zone_traffic_share_ratio');
    assert.equal(shares.length, 3);
    assert.ok(Math.abs(shares.reduce((sum, sample) => sum + sample.value, 0) - 1) < 1e-9, 'zone shares add up to 1');
    assert.equal(after.sum('hsmb_appliance_sessions'), 3, 'one session per worker, one worker per appliance');
    assert.equal(after.sum('hsmb_appliance_breaker_state', { state: 'closed' }), 3);
    assert.equal(after.sum('hsmb_zone_healthy_appliances'), 3);
    assert.equal(after.sum('hsmb_keys', { state: 'ENABLED' }), 1);
    assert.equal(after.sum('hsmb_key_versions_under_replicated'), 0);
    assert.ok(after.sum('hsmb_appliance_key_versions') >= 2, 'the key version is on at least two appliances');
  });

  it('shows an injected fault as failures, an ejection, retries and an open breaker; readiness follows the fleet', async () => {
    const before = await scrape(admin);
    const opened = breakerReaches(t, 'hsm-a1', 'open');
    await t.clients.fleet.injectFault({ applianceId: 'hsm-a1', kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
    // Callers keep succeeding: failed attempts on hsm-a1 are retried elsewhere.
    for (let i = 0; i < 20; i++) await t.clients.crypto.sign(signRequest);
    await opened;
    const during = await scrape(admin);
    const a1 = { appliance: 'hsm-a1' };
    assert.ok(during.sum('hsmb_appliance_failures_total', { ...a1, class: 'appliance' }) > before.sum('hsmb_appliance_failures_total', { ...a1, class: 'appliance' }));
    // Each failed half-open trial opens the breaker again: at least one ejection, and as many as times it opened.
    assert.ok(during.sum('hsmb_appliance_breaker_ejections_total', a1) >= before.sum('hsmb_appliance_breaker_ejections_total', a1) + 1);
    assert.equal(during.sum('hsmb_appliance_breaker_ejections_total', a1), during.sum('hsmb_appliance_breaker_transitions_total', { ...a1, state: 'open' }));
    assert.equal(during.sum('hsmb_appliance_breaker_state', { ...a1, state: 'open' }) + during.sum('hsmb_appliance_breaker_state', { ...a1, state: 'half-open' }), 1);
    assert.equal(during.sum('hsmb_appliance_injected_faults', a1), 1);
    assert.equal(during.sum('hsmb_rpc_requests_total', { method: 'Sign', code: 'OK' }) - before.sum('hsmb_rpc_requests_total', { method: 'Sign', code: 'OK' }), 20);
    // Whether a caller's call met hsm-a1 depends on routing; probes alone can open the breaker.
    const routedToA1 = during.sum('hsmb_appliance_requests_total', { ...a1, traffic: 'caller' }) - before.sum('hsmb_appliance_requests_total', { ...a1, traffic: 'caller' });
    const retried = during.sum('hsmb_retries_total', { operation: 'sign' }) - before.sum('hsmb_retries_total', { operation: 'sign' });
    const callerFailures = during.sum('hsmb_appliance_failures_total', { ...a1, class: 'appliance', traffic: 'caller' }) - before.sum('hsmb_appliance_failures_total', { ...a1, class: 'appliance', traffic: 'caller' });
    assert.equal(retried, callerFailures, 'every failed caller attempt on hsm-a1 was retried on another appliance');
    assert.ok(routedToA1 >= callerFailures);
    assert.equal((await getJson(admin, '/readyz')).status, 200, 'two serving appliances in two zones still meet the durability policy');

    const b1Opened = breakerReaches(t, 'hsm-b1', 'open');
    await t.clients.fleet.injectFault({ applianceId: 'hsm-b1', kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
    await b1Opened;
    const notReady = await getJson(admin, '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body['ready'], false);
    assert.deepEqual((notReady.body['checks'] as Record<string, unknown>)['appliances'], { ok: false, serving: 1, required: 2 });

    const closed = Promise.all([breakerReaches(t, 'hsm-a1', 'closed'), breakerReaches(t, 'hsm-b1', 'closed')]);
    await t.clients.fleet.clearFaults({ applianceId: '' });
    await closed;
    assert.equal((await getJson(admin, '/readyz')).status, 200);
    const cleared = await scrape(admin);
    assert.equal(cleared.sum('hsmb_appliance_injected_faults'), 0);
    assert.equal(cleared.sum('hsmb_appliance_breaker_state', { state: 'closed' }), 3);
  });

  it('counts reconciliation runs by trigger', async () => {
    const before = await scrape(admin);
    const report = await t.clients.fleet.resyncKeys({ applianceId: '' });
    const after = await scrape(admin);
    assert.equal(after.sum('hsmb_reconciler_runs_total', { trigger: 'request' }), before.sum('hsmb_reconciler_runs_total', { trigger: 'request' }) + 1);
    assert.equal(after.sum('hsmb_reconciler_copies_total') - before.sum('hsmb_reconciler_copies_total'), report.copied);
    assert.equal(after.sum('hsmb_replication_versions_missing'), 0);
    assert.equal(after.sum('hsmb_replication_orphans'), 0);
  });

  it('counts a killed worker process as a restart of its appliance', async () => {
    const appliance = t.broker.fleet.appliance('hsm-c1');
    const labels = { appliance: 'hsm-c1', zone: appliance.zone };
    const before = await scrape(admin);
    const [pid] = appliance.workerPids;
    assert.ok(pid !== undefined, 'hsm-c1 has a worker to kill');
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (appliance.workerCount < 1 || appliance.workerPids.includes(pid))) await sleep(50);
    assert.ok(!appliance.workerPids.includes(pid) && appliance.workerCount === 1, 'hsm-c1 replaced its worker');
    const after = await scrape(admin);
    assert.equal(after.sum('hsmb_appliance_worker_restarts_total', labels), before.sum('hsmb_appliance_worker_restarts_total', labels) + 1);
    // Only the appliance whose worker died counts it.
    for (const other of ['hsm-a1', 'hsm-b1']) {
      assert.equal(after.sum('hsmb_appliance_worker_restarts_total', { appliance: other }), before.sum('hsmb_appliance_worker_restarts_total', { appliance: other }));
    }
  });
});
