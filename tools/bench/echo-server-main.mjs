// The gRPC floor: a grpc-js server with one unary method that answers with
// the request's bytes, no decoding, no work. It runs in its own process like
// the broker's main process, so the same load generator measures what grpc-js
// and HTTP/2 alone cost per call on this machine. Prints its port as one JSON
// line on stdout, then serves until SIGTERM.
import { Server, ServerCredentials } from '@grpc/grpc-js';

const bytes = (value) => value;
const echoService = {
  echo: {
    path: process.argv[2] ?? '/bench.v1.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

const server = new Server();
server.addService(echoService, { echo: (call, callback) => callback(null, call.request) });
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    process.stderr.write(`echo server: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ address: `127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
// The bench's own stdin closes when it dies: never outlive it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
