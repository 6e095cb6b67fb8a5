#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Client, credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ChannelOptions, ServiceError } from '@grpc/grpc-js';

// The container health check: `grpc.health.v1.Health/Check` for the whole
// server. Exit 0 when SERVING, 1 otherwise. The two messages are encoded by
// hand (an empty request; status is field 1, a varint) so the probe loads
// nothing but grpc-js and starts fast.
//
// A broker that serves mutual TLS refuses a plaintext probe, so the probe
// speaks TLS when HSMB_HEALTH_TLS_CA names the CA of the broker's
// certificate; HSMB_HEALTH_TLS_CERT and HSMB_HEALTH_TLS_KEY are the client
// certificate it presents (any the broker's client CA signed: health checks
// are answered before the access policy). HSMB_HEALTH_TLS_SERVER_NAME is the
// name to expect in the broker's certificate when it does not name the
// probe's address (127.0.0.1 by default).

const servingStatus = 1;

function channel(env: NodeJS.ProcessEnv): { creds: ChannelCredentials; options: ChannelOptions } {
  const ca = env['HSMB_HEALTH_TLS_CA'];
  if (!ca) return { creds: credentials.createInsecure(), options: {} };
  const cert = env['HSMB_HEALTH_TLS_CERT'];
  const key = env['HSMB_HEALTH_TLS_KEY'];
  if (!cert !== !key) throw new Error('HSMB_HEALTH_TLS_CERT and HSMB_HEALTH_TLS_KEY go together: set both or neither');
  const serverName = env['HSMB_HEALTH_TLS_SERVER_NAME'];
  return {
    creds: credentials.createSsl(readFileSync(ca), key ? readFileSync(key) : null, cert ? readFileSync(cert) : null),
    options: serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {},
  };
}

const address = process.argv[2] ?? '127.0.0.1:50051';
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
  // Under the HEALTHCHECK timeout (5 s); a TLS handshake on a busy host takes a while.
  { deadline: Date.now() + 4000 },
  (error: ServiceError | null, status?: number) => {
    client.close();
    if (error || status !== servingStatus) {
      console.error(`not serving: ${error ? error.message : `status ${String(status)}`}`);
      process.exit(1);
    }
    process.exit(0);
  },
);
