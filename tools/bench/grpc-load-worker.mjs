// A load generator process: one grpc-js channel to the broker, for a bounded
// time either keeping a fixed number of unary calls in flight (closed loop),
// sending calls at a fixed rate whatever the answers (open loop, the failover
// run), keeping batch calls in flight (mode 'batch') or requests in flight on
// one SignStream (mode 'stream'). Unary load in the report comes from h2load;
// batch and stream load from several of these. Several of these run at once because one
// grpc-js client process tops out near 2k calls/s here, below what the
// broker may serve.
import { randomBytes } from 'node:crypto';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import { CryptoServiceClient, EncryptRequest, MessageType, SignRequest, SignStreamRequest, SigningAlgorithm } from '@hsm-broker/proto';
import { operationById } from './bench-operations.mjs';
import { CallLog, WindowRecorder, epochNow } from './latency-stats.mjs';
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
      // Only the error goes on: the closed loop reads a second argument as the items a batch completed.
      return (done) => client.sign(request, new Metadata(), options(), (error) => done(error));
    }
    case 'encrypt': {
      const request = EncryptRequest.fromPartial({ keyId: init.keyId, plaintext: randomBytes(init.plaintextBytes) });
      return (done) => client.encrypt(request, new Metadata(), options(), (error) => done(error));
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
 * A batch call reports how many items succeeded and its first failed item;
 * its latency counts once.
 */
function runClosedLoop(call, { concurrency, warmupMs, durationMs }) {
  const startedAt = performance.now();
  const recorder = new WindowRecorder(startedAt + warmupMs, startedAt + warmupMs + durationMs);
  return new Promise((resolve) => {
    let inFlight = 0;
    const issue = () => {
      inFlight++;
      const callStartedAt = performance.now();
      call((error, okItems, itemError) => {
        inFlight--;
        const endedAt = performance.now();
        if (error) recorder.failure(error.code === undefined ? 'ERROR' : `grpc ${error.code}`, error.details ?? error.message);
        else {
          recorder.success(callStartedAt, endedAt, okItems);
          if (itemError) recorder.failure(`item ${itemError.code} ${itemError.reason}`, itemError.message);
        }
        if (endedAt < recorder.endsAt) issue();
        else if (inFlight === 0) resolve(recorder.report());
      });
    };
    for (let i = 0; i < concurrency; i++) issue();
  });
}

/** A failed call as the failover report shows it: status name, code, and the broker's reason trailer. */
function describeFailure(error) {
  if (error.code === undefined) return { kind: 'ERROR', message: error.message };
  const reason = error.metadata?.get?.('hsmb-reason')?.[0];
  return { kind: `${status[error.code] ?? 'code'} (${error.code})`, message: `${reason ? `[${String(reason)}] ` : ''}${error.details ?? error.message}` };
}

/**
 * Sends calls at `ratePerSec` for `runMs`, whatever the broker answers, then
 * waits for the calls still in flight (each has a deadline, so this is
 * bounded). Call n is due at start + (n + scheduleOffset) / rate; one that
 * cannot be sent because `maxInFlight` calls are already waiting is counted
 * as not sent, which only happens when calls outlive their deadlines.
 */
function runOpenLoop(call, { ratePerSec, runMs, callTimeoutMs, scheduleOffset = 0 }) {
  const log = new CallLog();
  const maxInFlight = Math.ceil((ratePerSec * (callTimeoutMs + 1000)) / 1000) + 1;
  const startedAt = epochNow();
  let scheduled = 0;
  let notSent = 0;
  let inFlight = 0;
  let ended = false;
  let worstSendLagMs = 0;
  return new Promise((resolve) => {
    const resolveWhenDone = () => {
      if (ended && inFlight === 0) resolve(log.report({ sent: scheduled - notSent, notSent, worstSendLagMs, startedAt }));
    };
    const send = (dueTime) => {
      inFlight++;
      worstSendLagMs = Math.max(worstSendLagMs, epochNow() - dueTime);
      call((error) => {
        inFlight--;
        const endedAt = epochNow();
        if (error) {
          const { kind, message } = describeFailure(error);
          log.failure(dueTime, endedAt, kind, message);
        } else {
          log.success(dueTime, endedAt);
        }
        resolveWhenDone();
      });
    };
    const dueAt = (n) => startedAt + ((n + scheduleOffset) * 1000) / ratePerSec;
    const tick = () => {
      const now = epochNow();
      for (const until = Math.min(now, startedAt + runMs); dueAt(scheduled) <= until; scheduled++) {
        if (inFlight < maxInFlight) send(dueAt(scheduled));
        else notSent++;
      }
      if (now >= startedAt + runMs) {
        ended = true;
        resolveWhenDone();
      } else {
        setTimeout(tick, 1);
      }
    };
    tick();
  });
}

/**
 * One batch call of the report's operation as a function taking a completion
 * callback; an item that failed is reported as the call's error count.
 */
function batchCallFor(client, init) {
  const operation = operationById(init.operation);
  if (!operation.batchMethod || !operation.batchRequest) throw new Error(`${init.operation} has no batch RPC`);
  const request = operation.batchRequest(init.samples, init.items);
  const method = operation.batchMethod;
  return (done) =>
    client[method](request, new Metadata(), { deadline: Date.now() + init.callTimeoutMs }, (error, response) => {
      if (error) return done(error);
      const failed = response.results.filter((result) => result.error);
      done(null, response.results.length - failed.length, failed[0]?.error);
    });
}

/**
 * One SignStream keeping `concurrency` requests in flight until the window
 * ends, then waiting for the answers still due and closing the stream.
 * Responses are matched by id (they may come out of order).
 */
function runSignStream(client, init) {
  const operation = operationById(init.operation);
  const sign = SignRequest.decode(operation.unaryRequest(init.samples));
  const startedAt = performance.now();
  const recorder = new WindowRecorder(startedAt + init.warmupMs, startedAt + init.warmupMs + init.durationMs);
  const stream = client.signStream(new Metadata(), { deadline: Date.now() + init.warmupMs + init.durationMs + init.callTimeoutMs });
  /** @type {Map<string, number>} */
  const sentAt = new Map();
  let next = 0;
  const send = () => {
    const id = String(next++);
    sentAt.set(id, performance.now());
    stream.write(SignStreamRequest.fromPartial({ requestId: id, request: sign }));
  };
  return new Promise((resolve) => {
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      stream.end();
      resolve(recorder.report());
    };
    stream.on('data', (response) => {
      const endedAt = performance.now();
      const began = sentAt.get(response.requestId) ?? endedAt;
      sentAt.delete(response.requestId);
      if (response.error) recorder.failure(`item ${response.error.code} ${response.error.reason}`, response.error.message);
      else recorder.success(began, endedAt);
      if (endedAt < recorder.endsAt) send();
      else if (sentAt.size === 0) finish();
    });
    stream.on('error', (error) => {
      recorder.failure(error.code === undefined ? 'ERROR' : `grpc ${error.code}`, error.details ?? error.message);
      finish();
    });
    for (let i = 0; i < init.concurrency; i++) send();
  });
}

serveMeasurement(async (init) => {
  const client = new CryptoServiceClient(init.address, credentials.createInsecure());
  await waitForReady(client, 10_000);
  if (init.mode === 'batch' || init.mode === 'stream') {
    const batch = init.mode === 'batch' ? batchCallFor(client, init) : undefined;
    return {
      info: { pid: process.pid },
      run: () => (batch ? runClosedLoop(batch, init) : runSignStream(client, init)),
      close: () => client.close(),
    };
  }
  const call = callFor(client, init);
  return {
    info: { pid: process.pid },
    run: () => (init.ratePerSec ? runOpenLoop(call, init) : runClosedLoop(call, init)),
    close: () => client.close(),
  };
});
