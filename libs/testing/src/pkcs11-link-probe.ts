import type { ContainerFleet } from './container-fleet.js';

/** What a client on the broker's side of a zone network got from an appliance's PKCS#11 port. */
export type LinkProbeResult = 'served' | 'refused';

// Run by the broker container's Node: p11-kit's RPC starts with the client
// sending a version byte (0) and the server echoing its own, so a reply of
// exactly one byte is p11-kit answering; a TLS alert, a closed connection or
// silence is a refusal.
const probeSource = `
const net = require('node:net'), tls = require('node:tls'), fs = require('node:fs');
const [host, mode] = process.argv.slice(1);
const dir = '/run/hsm-broker/secrets/';
const done = (result) => { console.log(result); process.exit(0); };
let socket;
if (mode === 'plain') socket = net.connect(5696, host);
else socket = tls.connect({ host, port: 5696, servername: host, ca: fs.readFileSync(dir + 'fleet-ca.pem'), minVersion: 'TLSv1.3',
  ...(mode === 'mutual' ? { cert: fs.readFileSync(dir + 'broker.pem'), key: fs.readFileSync(dir + 'broker.key') } : {}) });
socket.on(mode === 'plain' ? 'connect' : 'secureConnect', () => socket.write(Buffer.from([0])));
let reply = Buffer.alloc(0);
socket.on('data', (chunk) => { reply = Buffer.concat([reply, chunk]); if (reply.length === 1 && reply[0] === 0) setTimeout(() => done(reply.length === 1 ? 'served' : 'refused'), 300); });
socket.on('error', () => done('refused'));
socket.on('close', () => done(reply.length === 1 && reply[0] === 0 ? 'served' : 'refused'));
setTimeout(() => done('refused'), 5000);
`;

/**
 * Connects from inside the broker container to an appliance's PKCS#11 port:
 * `mutual` with the broker's fleet certificate, `anonymous` as a TLS client
 * without one, `plain` as p11-kit's client would without TLS. Only `mutual`
 * may be served: p11-kit's protocol carries the user PIN.
 */
export async function probePkcs11Link(fleet: ContainerFleet, applianceId: string, mode: 'mutual' | 'anonymous' | 'plain'): Promise<LinkProbeResult> {
  const { exitCode, output } = await fleet.execInBroker(['/usr/local/bin/node', '-e', probeSource, applianceId, mode]);
  if (exitCode !== 0 || (output !== 'served' && output !== 'refused')) throw new Error(`the link probe failed (exit ${String(exitCode)}): ${output}`);
  return output;
}
