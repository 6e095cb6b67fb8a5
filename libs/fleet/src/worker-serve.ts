import { Socket } from 'node:net';
import { BrokerError } from '@hsm-broker/errors';
import { applyFaults } from './fault-injection.js';
import type { ActiveFault } from './fault-injection.js';
import { operationNotInRole, operationsByCode } from './worker-operations.js';
import type { WorkerContext } from './worker-operations.js';
import type { ParentMessage, WorkerInitMessage, WorkerMessage } from './worker-protocol.js';
import { workerPipeFd } from './worker-protocol.js';
import { CoalescingFrameWriter, FrameReader, responseError, responseOk } from './worker-wire.js';
import type { ValueReader } from './worker-wire.js';

/** Opens what a worker serves from its init message; `close` runs when the broker disconnects. */
export type WorkerOpener = (init: WorkerInitMessage) => { context: WorkerContext; close(): void };

function send(message: WorkerMessage, sent?: () => void): void {
  process.send?.(message, undefined, undefined, () => sent?.());
}

/**
 * The serving loop of a worker process: lifecycle messages on the IPC
 * channel, calls on the worker pipe. Calls run in arrival order, one at a
 * time (a PKCS#11 call blocks this process only, never the broker's event
 * loop); the answers of one turn leave in one write. Injected faults act
 * here, on the path every call takes.
 * @internal
 */
export function serveWorker(open: WorkerOpener): void {
  let context: WorkerContext | undefined;
  let faults: ActiveFault[] = [];
  const pipe = new Socket({ fd: workerPipeFd, readable: true, writable: true });
  const out = new CoalescingFrameWriter(pipe);

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

  const run = (id: number, code: number, payload: ValueReader): void => {
    const operation = operationsByCode.get(code);
    try {
      if (!operation || !context) throw operationNotInRole(operation?.name ?? `operation ${String(code)}`);
      const args: Record<string, unknown> = {};
      for (const field of operation.fields) args[field] = payload.value();
      if (faults.length > 0) applyFaults(faults, operation.name);
      respond(id, true, operation.run(context, args as never));
    } catch (error: unknown) {
      respond(id, false, BrokerError.from(error).toJSON());
    }
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
