#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Client, credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ServiceError } from '@grpc/grpc-js';

// The container health check: `grpc.health.v1.Health/Check` for the whole
// server. Exit 0 when SERVING, 1 otherwise. The two messages are encoded by
// hand (an empty request; status is field 1, a varint) so the probe loads
// nothing but grpc-js and starts fast.
//
//   health-probe.js [ADDRESS] [--tls-ca FILE --tls-cert FILE --tls-key FILE [--server-name NAME]]
//
// With the TLS files it speaks mutual TLS, as a broker serving mTLS requires
// (a Kubernetes exec readiness probe: the kubelet's own gRPC probe has no TLS).

const servingStatus = 1;

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : process.argv[index + 1];
}

const address = process.argv[2] !== undefined && !process.argv[2].startsWith('--') ? process.argv[2] : '127.0.0.1:50051';
const ca = option('tls-ca');
const cert = option('tls-cert');
const key = option('tls-key');
const serverName = option('server-name');
let channelCredentials: ChannelCredentials = credentials.createInsecure();
try {
  if (ca !== undefined || cert !== undefined || key !== undefined) {
    if (ca === undefined || cert === undefined || key === undefined) throw new Error('--tls-ca, --tls-cert and --tls-key go together');
    channelCredentials = credentials.createSsl(readFileSync(ca), readFileSync(key), readFileSync(cert));
  }
} catch (error: unknown) {
  console.error(`not serving: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
const client = new Client(
  address,
  channelCredentials,
  serverName === undefined ? {} : { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName },
);
client.makeUnaryRequest(
  '/grpc.health.v1.Health/Check',
  () => Buffer.alloc(0),
  (bytes: Buffer) => (bytes.length >= 2 && bytes[0] === 0x08 ? (bytes[1] ?? 0) : 0),
  {},
  { deadline: Date.now() + 1500 },
  (error: ServiceError | null, status?: number) => {
    client.close();
    if (error || status !== servingStatus) {
      console.error(`not serving: ${error ? error.message : `status ${String(status)}`}`);
      process.exit(1);
    }
    process.exit(0);
  },
);
