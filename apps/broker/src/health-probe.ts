#!/usr/bin/env node
import { Client, credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';

// The container health check: `grpc.health.v1.Health/Check` for the whole
// server. Exit 0 when SERVING, 1 otherwise. The two messages are encoded by
// hand (an empty request; status is field 1, a varint) so the probe loads
// nothing but grpc-js and starts fast.

const servingStatus = 1;

const address = process.argv[2] ?? '127.0.0.1:50051';
const client = new Client(address, credentials.createInsecure());
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
