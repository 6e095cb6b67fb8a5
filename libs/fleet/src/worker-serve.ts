import { Socket } from 'node:net';
import { BrokerError } from '@hsm-broker/errors';
import { applyFaults, applySessionFaults } from './fault-injection.js';
import type { ActiveFault } from './fault-injection.js';
import { operationNotInRole, operationsByCode } from './worker-operations.js';
import type { NamedOperation, WorkerContext } from './worker-operations.js';
import type { ParentMessage, WorkerInitMessage, WorkerMessage } from './worker-protocol.js';
import { workerPipeFd } from './worker-protocol.js';
import { CoalescingFrameWriter, FrameReader, responseError, responseOk } from './worker-wire.js';
import type { ValueReader } from './worker-wire.js';

/** Opens what a worker serves from its init message; `close` runs when the broker disconnects. */
export type WorkerOpener = (init: WorkerInitMessage) => { context: WorkerContext; close(): void };

function send(message: WorkerMessage, sent?: () => void): void {
  process.send?.(message, undefined, undefined, () => sent?.());
}

interface QueuedCall {
  id: number;
  operation: NamedOperation;
  args: Record<string, unknown>;
}

/**
 * The serving loop of a worker process: lifecycle messages on the IPC
 * channel, calls on the worker pipe. Calls start in arrival order. With one
 * session each runs to its end before the next (a PKCS#11 call blocks this
 * process only, never the broker's event loop). With several, operations
 * that can run concurrently take a session each, up to the number of
 * sessions, their PKCS#11 calls on the libuv thread pool; any other
 * operation waits until none runs and then runs alone, so that a reconnect
 * (which finalizes the module) never overlaps a call on another thread. The
 * broker's end mirrors this order to tell which calls are running (see
 * WorkerConnection). The answers of one turn leave in one write. Injected
 * faults act here, on the path every call takes: on the process for a call
 * run alone, on its session for a concurrent one.
 * @internal
 */
export function serveWorker(open: WorkerOpener): void {
  let context: WorkerContext | undefined;
  let sessions = 1;
  let faults: ActiveFault[] = [];
  const pipe = new Socket({ fd: workerPipeFd, readable: true, writable: true });
  const out = new CoalescingFrameWriter(pipe);
  const queue: QueuedCall[] = [];
  let running = 0;

  const respond = (id: number, ok: boolean, value: unknown): void => {
    const frames = out.frames;
    frames.beginFrame(id, ok ? responseOk : responseError);
    try {
      frames.value(value);
      frames.endFrame();
    } catch (error: unknown) {
      frames.abandonFrame();
      frames.beginFrame(id, responseError);
      frames.value(BrokerError.from(error).toJSON());
      frames.endFrame();
    }
    out.schedule();
  };

  const fail = (id: number, error: unknown): void => respond(id, false, BrokerError.from(error).toJSON());

  const runAlone = ({ id, operation, args }: QueuedCall, served: WorkerContext): void => {
    try {
      if (faults.length > 0) applyFaults(faults, operation.name);
      respond(id, true, operation.run(served, args as never));
    } catch (error: unknown) {
      fail(id, error);
    }
  };

  const startConcurrently = ({ id, operation, args }: QueuedCall, served: WorkerContext, body: NonNullable<NamedOperation['concurrently']>): void => {
    running++;
    const finished = (): void => {
      running--;
      pump();
    };
    try {
      const work = faults.length > 0 ? applySessionFaults(faults, operation.name).then(() => body(served, args as never)) : body(served, args as never);
      work.then(
        (value) => {
          respond(id, true, value);
          finished();
        },
        (error: unknown) => {
          fail(id, error);
          finished();
        },
      );
    } catch (error: unknown) {
      fail(id, error);
      finished();
    }
  };

  const pump = (): void => {
    const served = context;
    while (served && queue.length > 0) {
      const next = queue[0];
      const body = sessions > 1 ? next.operation.concurrently : undefined;
      if (body ? running >= sessions : running > 0) return;
      queue.shift();
      if (body) startConcurrently(next, served, body);
      else runAlone(next, served);
    }
  };

  const run = (id: number, code: number, payload: ValueReader): void => {
    const operation = operationsByCode.get(code);
    try {
      if (!operation || !context) throw operationNotInRole(operation?.name ?? `operation ${String(code)}`);
      const args: Record<string, unknown> = {};
      for (const field of operation.fields) args[field] = payload.value();
      queue.push({ id, operation, args });
    } catch (error: unknown) {
      fail(id, error);
      return;
    }
    pump();
  };

  const reader = new FrameReader(run);
  pipe.on('data', (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch {
      // A corrupt stream cannot be resynchronised; the broker sees the exit and restarts the worker.
      process.exit(70);
    }
  });
  // The broker is gone (its end of the pipe closed): nothing may keep a session open.
  pipe.on('end', () => process.exit(0));
  pipe.on('error', () => process.exit(0));

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'faults') {
      faults = message.faults;
      return;
    }
    try {
      const opened = open(message);
      context = opened.context;
      sessions = Math.max(1, message.sessions ?? 1);
      process.once('disconnect', () => opened.close());
      send({ type: 'ready' });
    } catch (error: unknown) {
      // Disconnect only once the refusal is written: disconnecting with the
      // message still queued makes Node's channel code throw in this process.
      send({ type: 'init-failed', error: BrokerError.from(error).toJSON() }, () => {
        if (process.connected) process.disconnect();
      });
    }
  });

  process.on('disconnect', () => {
    // The broker is gone; nothing may keep this process alive holding a session.
    setImmediate(() => process.exit(0));
  });
}
