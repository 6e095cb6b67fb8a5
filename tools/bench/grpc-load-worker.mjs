// A load generator process: one grpc-js channel to the broker, keeping a fixed
// number of unary calls in flight for a bounded time. Several of these run at
// once because one grpc-js client process tops out near 2k calls/s here,
// below what the broker may serve.
import { randomBytes } from 'node:crypto';
import { Metadata, credentials } from '@grpc/grpc-js';
import { CryptoServiceClient, EncryptRequest, MessageType, SignRequest, SigningAlgorithm } from '@hsm-broker/proto';
import { WindowRecorder } from './latency-stats.mjs';
import { serveMeasurement } from './measuring-child.mjs';

/**
 * One call of the scenario, as a function taking a completion callback.
 * The request is built once: the broker's work does not depend on the bytes,
 * and building a fresh one per call would load the generator, not the broker.
 * fromPartial fills any field added to the API later with its default.
 */
function callFor(client, init) {
  const options = () => ({ deadline: Date.now() + init.callTimeoutMs });
  switch (init.operation) {
    case 'sign': {
      const request = SignRequest.fromPartial({
        keyId: init.keyId,
        message: randomBytes(init.messageBytes),
        messageType: MessageType.RAW,
        signingAlgorithm: SigningAlgorithm.ECDSA_SHA_256,
      });
      return (done) => client.sign(request, new Metadata(), options(), done);
    }
    case 'encrypt': {
      const request = EncryptRequest.fromPartial({ keyId: init.keyId, plaintext: randomBytes(init.plaintextBytes) });
      return (done) => client.encrypt(request, new Metadata(), options(), done);
    }
    default:
      throw new Error(`unknown operation ${init.operation}`);
  }
}

function waitForReady(client, timeoutMs) {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Keeps `concurrency` calls in flight until the window ends, then lets the
 * calls still in flight finish (each has a deadline, so this is bounded).
 */
function runClosedLoop(call, { concurrency, warmupMs, durationMs }) {
  const startedAt = performance.now();
  const recorder = new WindowRecorder(startedAt + warmupMs, startedAt + warmupMs + durationMs);
  return new Promise((resolve) => {
    let inFlight = 0;
    const issue = () => {
      inFlight++;
      const callStartedAt = performance.now();
      call((error) => {
        inFlight--;
        const endedAt = performance.now();
        if (error) recorder.failure(error.code === undefined ? 'ERROR' : `grpc ${error.code}`, error.details ?? error.message);
        else recorder.success(callStartedAt, endedAt);
        if (endedAt < recorder.endsAt) issue();
        else if (inFlight === 0) resolve(recorder.report());
      });
    };
    for (let i = 0; i < concurrency; i++) issue();
  });
}

serveMeasurement(async (init) => {
  const client = new CryptoServiceClient(init.address, credentials.createInsecure());
  await waitForReady(client, 10_000);
  const call = callFor(client, init);
  return {
    info: { pid: process.pid },
    run: () => runClosedLoop(call, init),
    close: () => client.close(),
  };
});
