/** One appliance of a harness fleet, as the broker's configuration names it. */
export interface FleetMember {
  id: string;
  zone: string;
}

/** Zone names of a harness fleet: az-a, az-b, … (as the embedded fleet and compose). */
export function zoneName(index: number): string {
  return `az-${String.fromCharCode(97 + index)}`;
}

/** Appliance ids: hsm-a1, hsm-a2, hsm-b1, … */
export function fleetMembers(zones: number, perZone: number): FleetMember[] {
  const members: FleetMember[] = [];
  for (let z = 0; z < zones; z++) {
    for (let n = 1; n <= perZone; n++) members.push({ id: `hsm-${String.fromCharCode(97 + z)}${String(n)}`, zone: zoneName(z) });
  }
  return members;
}

/**
 * The p11-kit client's server address for one appliance: socat carries the
 * PKCS#11 RPC over mutual TLS 1.3 under the fleet CA (the node's certificate
 * must name the appliance; the broker presents its own), with Nagle off and
 * a 1 s connect timeout so that a partitioned node is given up quickly.
 */
export function pkcs11Address(applianceId: string, tls: { ca: string; cert: string; key: string }): string {
  return `|socat - OPENSSL:${applianceId}:5696,nodelay,connect-timeout=1,min-version=TLS1.3,cafile=${tls.ca},cert=${tls.cert},key=${tls.key}`;
}

/**
 * The broker's HSMB_CONFIG for a harness fleet: every appliance reached with
 * p11-kit's client over its zone network and its clone endpoint, both over
 * mutual TLS under the fleet CA.
 * JSON is YAML, so no YAML writer is needed. `settings` are merged over the
 * defaults at the top level (routing, timeouts, durability, …).
 */
export function fleetBrokerConfig(members: FleetMember[], settings: Record<string, unknown> = {}): string {
  const secrets = '/run/hsm-broker/secrets';
  const tls = { ca: `${secrets}/fleet-ca.pem`, cert: `${secrets}/broker.pem`, key: `${secrets}/broker.key` };
  const config: Record<string, unknown> = {
    listen: '0.0.0.0:50051',
    // The harness publishes the port on loopback for the test process only; mutual TLS is the clone
    // endpoints' business. Plaintext beyond the container's loopback is a development setting.
    insecure: true,
    development: true,
    dataDir: '/var/lib/hsm-broker',
    localZone: members[0]?.zone ?? 'az-a',
    faultInjection: true,
    durability: { minAppliances: 2, minZones: Math.min(2, new Set(members.map((m) => m.zone)).size) },
    timeouts: { callMs: 1500, startMs: 30000 },
    // Hedges and retries are how a hung appliance costs nothing; the budget's floor
    // must cover every call that was on the way to a partitioned zone.
    routing: { healthIntervalMs: 1000, probeTimeoutMs: 1000, consecutiveFailures: 2, hedgeDelayMs: 400, retryBudgetMinPerSecond: 100 },
    reconcileIntervalSeconds: 5,
    cloneTls: tls,
    ...settings,
    appliances: members.map((member) => ({
      id: member.id,
      zone: member.zone,
      module: '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so',
      env: { P11_KIT_SERVER_ADDRESS: pkcs11Address(member.id, tls) },
      uri: `pkcs11:token=${member.id}`,
      pin: `file:${secrets}/user.pin`,
      clone: `https://${member.id}:5697`,
    })),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
