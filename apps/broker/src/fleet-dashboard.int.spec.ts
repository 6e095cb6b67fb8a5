import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { FaultKind, KeySpec, KeyUsage, MessageType, SigningAlgorithm } from '@hsm-broker/proto';
import { startTestBroker } from './testing/broker-harness.js';
import type { TestBroker } from './testing/broker-harness.js';

// The fleet dashboard end to end: a real broker with 30 SoftHSM appliances,
// the page in headless Chromium (Debian's), an injected fault and its
// clearing seen on the page. Screenshots go to reports/dashboard/.

const chromiumPath = '/usr/bin/chromium';
const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const screenshotDir = fileURLToPath(new URL('../../../reports/dashboard/', import.meta.url));
const quickRecovery = {
  timeouts: { callMs: 3000, startMs: 60_000 },
  routing: { openMs: 300, maxOpenMs: 2000, healthIntervalMs: 100, probeTimeoutMs: 1000, slowStartMs: 0, consecutiveFailures: 3 },
};
const signRequest = { keyId: 'd/ec', message: Buffer.from('dashboard sign load 9c21'), messageType: MessageType.RAW, signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256 };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The colour class a tile shows (green, amber, red, grey), as the page set it. */
function tileColour(page: Page, applianceId: string): Promise<string | null> {
  return page.locator(`.tile[data-appliance="${applianceId}"]`).getAttribute('data-colour');
}

/** Waits until the appliance's tile has `colour`. */
async function tileTurns(page: Page, applianceId: string, colour: string, timeoutMs: number): Promise<void> {
  await page.locator(`.tile[data-appliance="${applianceId}"][data-colour="${colour}"]`).waitFor({ timeout: timeoutMs });
}

/** The page's window as far as these tests use it (the project compiles without DOM types). */
type PageWindow = { getComputedStyle(node: unknown): { backgroundColor: string } };

describe('fleet dashboard in headless Chromium', { timeout: 900_000 }, () => {
  if (!existsSync(chromiumPath)) {
    it('needs Debian chromium at /usr/bin/chromium', { skip: `SKIPPED LOUDLY: ${chromiumPath} is missing; tools/setup/prerequisites.mjs installs it (apt-get install chromium) for npm test` }, () => undefined);
    return;
  }
  let t: TestBroker;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const requested: string[] = [];
  let load: Promise<void> | undefined;
  let loading = true;

  before(async () => {
    t = await startTestBroker({ env: { HSMB_LOCAL_FLEET: '3x10', HSMB_WORKERS_PER_APPLIANCE: '1', HSMB_FAULT_INJECTION: '1' }, config: quickRecovery });
    assert.ok(t.broker.adminAddress);
    for (let attempt = 1; ; attempt++) {
      try {
        await t.clients.keys.createKey({ keyId: 'd/ec', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: '', labels: {}, rotationPeriodDays: 0 });
        break;
      } catch (error: unknown) {
        if (attempt === 3) throw error;
        await sleep(500);
      }
    }
    // Light steady traffic, so rates and sparklines have something to show.
    load = (async () => {
      while (loading) {
        await t.clients.crypto.sign(signRequest).catch(() => undefined);
        await sleep(20);
      }
    })();
    profile = mkdtempSync(join(tmpdir(), 'hsmb-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args: chromiumFlags, viewport: { width: 1600, height: 1000 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (request) => requested.push(request.url()));
    mkdirSync(screenshotDir, { recursive: true });
  });

  after(async () => {
    loading = false;
    await load;
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await t.dispose();
  });

  it('shows every zone and all 30 appliances, readable on one screen, fetching nothing from elsewhere', async () => {
    const origin = `http://${String(t.broker.adminAddress)}`;
    await page.goto(`${origin}/`);
    await page.locator('.tile').nth(29).waitFor();
    assert.equal(await page.locator('.zone').count(), 3);
    assert.equal(await page.locator('.tile').count(), 30);
    await page.screenshot({ path: join(screenshotDir, 'fleet-dashboard-first-paint.png'), fullPage: true });
    for (const appliance of t.broker.fleet.appliances) {
      const tile = page.locator(`.tile[data-appliance="${appliance.id}"]`);
      assert.match((await tile.innerText()).split('\n')[0] ?? '', new RegExp(`^${appliance.id}`));
      const box = await tile.boundingBox();
      assert.ok(box && box.y + box.height <= 1000 && box.x + box.width <= 1600, `${appliance.id}'s tile is on screen without scrolling: ${JSON.stringify(box)}`);
      assert.ok(box.width >= 120, `${appliance.id}'s tile is wide enough to read (${String(box.width)} px)`);
    }
    await page.locator('#link', { hasText: 'live' }).waitFor();
    await page.locator('.tile[data-colour="green"]').nth(29).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('.tile[data-colour="green"]').count(), 30);
    assert.equal(await page.locator('#ready').innerText(), 'READY');
    assert.match(await page.locator('#replication').innerText(), /fully replicated/);
    assert.ok(requested.length >= 3, 'the page, its style sheet and script were loaded');
    for (const url of requested) assert.ok(url.startsWith(`${origin}/`), `only the admin listener is fetched, not ${url}`);
  });

  it('turns a faulty appliance red within 2 s and back when the fault is cleared', async () => {
    // In the local zone, so callers' traffic meets the fault as well as the probes.
    const target = 'hsm-a3';
    assert.equal(await tileColour(page, target), 'green');
    await t.clients.fleet.injectFault({ applianceId: target, kind: FaultKind.ERROR, probability: 0, latencyMs: 0, durationMs: 0 });
    // The contract: red within 2 s of the fault (probes find it; the breaker opens; the page is told at once).
    await tileTurns(page, target, 'red', 2000);
    const background = await page.locator(`.tile[data-appliance="${target}"]`).evaluate((node) => (globalThis as unknown as PageWindow).getComputedStyle(node).backgroundColor);
    assert.equal(background, 'rgb(179, 38, 30)', 'the tile is drawn red, not just labelled');
    assert.match(await page.locator(`.tile[data-appliance="${target}"]`).innerText(), /FAULT ERROR/);
    await page.locator('#events li', { hasText: `ERROR fault injected on ${target}` }).first().waitFor();
    await page.locator('#events li', { hasText: `${target} ejected` }).first().waitFor();
    const red = await Promise.all((await page.locator('.tile[data-colour="red"]').all()).map((tile) => tile.getAttribute('data-appliance')));
    assert.deepEqual(red, [target], 'only the faulty appliance is red');
    await page.screenshot({ path: join(screenshotDir, 'fleet-dashboard-fault.png'), fullPage: true });

    await t.clients.fleet.clearFaults({ applianceId: target });
    await tileTurns(page, target, 'green', 30_000);
    await page.locator('#events li', { hasText: `${target} recovered` }).first().waitFor();
    assert.doesNotMatch(await page.locator(`.tile[data-appliance="${target}"]`).innerText(), /FAULT/);
    await page.screenshot({ path: join(screenshotDir, 'fleet-dashboard.png'), fullPage: true });
  });
});
