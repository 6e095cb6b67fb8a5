#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Client, credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ChannelOptions, ServiceError } from '@grpc/grpc-js';

// The container health check: `grpc.health.v1.Health/Check` for the whole
// server. Exit 0 when SERVING, 1 otherwise. The two messages are encoded by
// hand (an empty request; status is field 1, a varint) so the probe loads
// nothing but grpc-js and starts fast.
//
//   health-probe.js [ADDRESS] [--tls-ca FILE --tls-cert FILE --tls-key FILE [--server-name NAME]]
//
// A broker that serves mutual TLS refuses a plaintext probe, so the probe
// speaks TLS when given the CA of the broker's certificate and a client
// certificate (any the broker's client CA signed: health checks are answered
// before the access policy). The files come from the flags above (a
// Kubernetes exec probe: the kubelet's own gRPC probe has no TLS) or, for the
// image's HEALTHCHECK, from HSMB_HEALTH_TLS_CA, HSMB_HEALTH_TLS_CERT and
// HSMB_HEALTH_TLS_KEY. The server name is the name to expect in the broker's
// certificate when it does not name the probe's address.

const servingStatus = 1;

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : process.argv[index + 1];
}

interface ProbeTls {
  ca: string;
  cert: string | undefined;
  key: string | undefined;
  serverName: string | undefined;
}

function probeTls(env: NodeJS.ProcessEnv): ProbeTls | undefined {
  const [ca, cert, key] = [option('tls-ca'), option('tls-cert'), option('tls-key')];
  if (ca !== undefined || cert !== undefined || key !== undefined) {
    if (ca === undefined || cert === undefined || key === undefined) throw new Error('--tls-ca, --tls-cert and --tls-key go together');
    return { ca, cert, key, serverName: option('server-name') };
  }
  const envCa = env['HSMB_HEALTH_TLS_CA'];
  if (!envCa) return undefined;
  const envCert = env['HSMB_HEALTH_TLS_CERT'];
  const envKey = env['HSMB_HEALTH_TLS_KEY'];
  if (!envCert !== !envKey) throw new Error('HSMB_HEALTH_TLS_CERT and HSMB_HEALTH_TLS_KEY go together: set both or neither');
  return { ca: envCa, cert: envCert || undefined, key: envKey || undefined, serverName: env['HSMB_HEALTH_TLS_SERVER_NAME'] || undefined };
}

function channel(env: NodeJS.ProcessEnv): { creds: ChannelCredentials; options: ChannelOptions } {
  const tls = probeTls(env);
  if (!tls) return { creds: credentials.createInsecure(), options: {} };
  return {
    creds: credentials.createSsl(readFileSync(tls.ca), tls.key ? readFileSync(tls.key) : null, tls.cert ? readFileSync(tls.cert) : null),
    options: tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {},
  };
}

const address = process.argv[2] !== undefined && !process.argv[2].startsWith('--') ? process.argv[2] : '127.0.0.1:50051';
let client: Client;
try {
  const { creds, options } = channel(process.env);
  client = new Client(address, creds, options);
} catch (error: unknown) {
  console.error(`health probe: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
client.makeUnaryRequest(
  '/grpc.health.v1.Health/Check',
  () => Buffer.alloc(0),
  (bytes: Buffer) => (bytes.length >= 2 && bytes[0] === 0x08 ? (bytes[1] ?? 0) : 0),
  {},
  // Under the image's HEALTHCHECK timeout (15 s), so the probe reports why it
  // failed before Docker kills it; a TLS handshake on a busy host takes a while.
  { deadline: Date.now() + 12_000 },
  (error: ServiceError | null, status?: number) => {
    client.close();
    if (error || status !== servingStatus) {
      console.error(`not serving: ${error ? error.message : `status ${String(status)}`}`);
      process.exit(1);
    }
    process.exit(0);
  },
);
