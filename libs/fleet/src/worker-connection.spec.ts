import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, Code } from '@hsm-broker/errors';
import { operationCatalog } from './worker-operations.js';
import { WorkerConnection } from './worker-connection.js';
import { FrameReader, FrameWriter, responseError, responseOk } from './worker-wire.js';

interface SentCall {
  id: number;
  code: number;
  args: unknown[];
}

/** A connection whose worker side the test plays by hand. */
function connection(applianceId = 'hsm-t1', sessions = 1): { conn: WorkerConnection; sent: SentCall[]; writes: number[]; hangs: string[]; answer: (id: number, ok: boolean, value: unknown) => void } {
  const sent: SentCall[] = [];
  const writes: number[] = [];
  const hangs: string[] = [];
  const reader = new FrameReader((id, code, payload) => {
    const args: unknown[] = [];
    while (!payload.done) args.push(payload.value());
    sent.push({ id, code, args });
  });
  const conn = new WorkerConnection(applianceId, { write: (bytes) => (writes.push(bytes.length), reader.push(bytes)) }, (op) => hangs.push(op), sessions);
  return {
    conn,
    sent,
    writes,
    hangs,
    answer: (id, ok, value) => {
      const writer = new FrameWriter();
      writer.beginFrame(id, ok ? responseOk : responseError);
      writer.value(value);
      writer.endFrame();
      conn.receive(writer.take());
    },
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Holds the event loop, as parsing a huge request or a long garbage collection does. */
function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // Busy: nothing else runs meanwhile.
  }
}

describe('WorkerConnection', () => {
  it('sends many calls in one write, fields in catalog order, and matches answers given out of order', async () => {
    const { conn, sent, writes, answer } = connection();
    const calls = Array.from({ length: 100 }, (_, i) =>
      conn.call('sign', { label: `k${String(i)}`, scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32, i) }, 1000),
    );
    assert.equal(conn.inFlight, 100);
    await turn();
    assert.equal(writes.length, 1, 'one write for the turn');
    assert.equal(sent.length, 100);
    assert.equal(sent[3]?.code, operationCatalog.sign.code);
    assert.deepEqual(sent[3]?.args, ['k3', 'ecdsa', 'sha256', Buffer.alloc(32, 3)]);
    for (const call of [...sent].reverse()) answer(call.id, true, Buffer.from(String(call.args[0])));
    const results = await Promise.all(calls);
    assert.deepEqual(
      results.map((result) => result.toString()),
      Array.from({ length: 100 }, (_, i) => `k${String(i)}`),
    );
    assert.equal(conn.inFlight, 0);
  });

  it('gives the worker error of one call to that call only', async () => {
    const { conn, sent, answer } = connection();
    const failing = conn.call('hasKey', { label: 'a' }, 1000);
    const passing = conn.call('hasKey', { label: 'b' }, 1000);
    await turn();
    answer(sent[0]?.id ?? 0, false, new BrokerError(Code.NOT_FOUND, 'gone', { reason: 'X_GONE' }).toJSON());
    answer(sent[1]?.id ?? 0, true, true);
    await assert.rejects(failing, (error: unknown) => error instanceof BrokerError && error.reason === 'X_GONE');
    assert.equal(await passing, true);
  });

  it('detects a hung call (the oldest in flight), reports it and fails the rest retryably once the worker is gone', async () => {
    const { conn, sent, hangs, answer } = connection();
    const first = conn.call('generateRandom', { length: 8 }, 60);
    const second = conn.call('generateRandom', { length: 8 }, 60);
    const third = conn.call('generateRandom', { length: 8 }, 60);
    await turn();
    answer(sent[0]?.id ?? 0, true, Buffer.alloc(8));
    assert.equal((await first).length, 8);
    await assert.rejects(second, (error: unknown) => error instanceof BrokerError && error.reason === 'APPLIANCE_TIMEOUT' && error.failureClass === 'appliance');
    assert.deepEqual(hangs, ['generateRandom']);
    // The owner kills the process on the hang; the calls behind it fail with it.
    conn.failAll((op) => new BrokerError(Code.UNAVAILABLE, `gone; ${op} not performed`, { reason: 'WORKER_EXITED', failureClass: 'appliance' }));
    await assert.rejects(third, (error: unknown) => error instanceof BrokerError && error.reason === 'WORKER_EXITED' && error.failureClass === 'appliance');
    await assert.rejects(conn.call('probe', {}, 60), /generate|probe not performed/u);
  });

  it('times a queued call from the answer before it, not from when it was sent', async () => {
    const { conn, sent, hangs, answer } = connection();
    const first = conn.call('generateRandom', { length: 1 }, 400);
    const second = conn.call('generateRandom', { length: 1 }, 400);
    await sleep(250);
    answer(sent[0]?.id ?? 0, true, Buffer.alloc(1));
    await first;
    await sleep(250);
    // 500 ms since it was sent, 250 ms since the worker could start it: not hung.
    answer(sent[1]?.id ?? 0, true, Buffer.alloc(1));
    assert.equal((await second).length, 1);
    assert.deepEqual(hangs, []);
  });

  it('with several sessions, finds a call hung on one while the others keep answering', async () => {
    const { conn, sent, hangs, answer } = connection('hsm-t1', 2);
    const sign = { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32) } as const;
    const stuck = conn.call('sign', sign, 300);
    const outcome = stuck.then(
      () => 'answered',
      (error: unknown) => (error instanceof BrokerError ? error.reason : 'other'),
    );
    // The second session answers a call every 40 ms for 800 ms.
    let answered = 0;
    for (let i = 0; i < 20 && hangs.length === 0; i++) {
      const other = conn.call('sign', sign, 300);
      other.catch(() => undefined);
      await sleep(40);
      if (hangs.length > 0) break;
      answer(sent[sent.length - 1]?.id ?? 0, true, Buffer.from('sig'));
      await other;
      answered++;
    }
    assert.deepEqual(hangs, ['sign']);
    assert.equal(await outcome, 'APPLIANCE_TIMEOUT');
    assert.ok(answered >= 5, `the other session answered meanwhile (${String(answered)})`);
    conn.failAll((op) => new BrokerError(Code.UNAVAILABLE, `gone; ${op} not performed`, { reason: 'WORKER_EXITED', failureClass: 'appliance' }));
  });

  it('times a call that must run alone from when the concurrent calls before it ended', async () => {
    const { conn, sent, hangs, answer } = connection('hsm-t1', 2);
    const sign = { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32) } as const;
    const signs = [conn.call('sign', sign, 5000), conn.call('sign', sign, 5000)];
    // A key lookup does not run concurrently: the worker starts it once both signs are done.
    const generate = conn.call('hasKey', { label: 'k' }, 300);
    await sleep(250);
    for (const call of sent.slice(0, 2)) answer(call.id, true, Buffer.from('sig'));
    await Promise.all(signs);
    await sleep(200);
    // 450 ms since it was sent, 200 ms since the worker could start it: not hung.
    assert.deepEqual(hangs, []);
    answer(sent[2]?.id ?? 0, true, true);
    assert.equal(await generate, true);
  });

  it("gives up on a caller's deadline while the worker finishes, and hands over the late outcome", async () => {
    const { conn, sent, hangs, answer } = connection();
    let settled: Promise<unknown> | undefined;
    const call = conn.call('sign', { label: 'k', scheme: 'ecdsa', hash: 'sha256', digest: Buffer.alloc(32) }, 5000, {
      deadline: Date.now() + 30,
      onAbandoned: (late) => {
        settled = late;
      },
    });
    await assert.rejects(call, (error: unknown) => error instanceof BrokerError && error.code === Code.DEADLINE_EXCEEDED && error.failureClass === 'deadline');
    assert.equal(conn.inFlight, 1, 'the worker still runs it');
    answer(sent[0]?.id ?? 0, true, Buffer.from('late'));
    assert.deepEqual(await settled, Buffer.from('late'));
    assert.equal(conn.inFlight, 0);
    assert.deepEqual(hangs, []);
  });

  it("holds none of the broker's own stalls against the worker, however many follow one another", async () => {
    const { conn, sent, hangs, answer } = connection();
    const probe = conn.call('probe', {}, 500, { deadline: Date.now() + 600 });
    // The loop stalls before the frame is even flushed, and twice more after.
    block(700);
    await turn();
    assert.equal(sent.length, 1, 'sent once the loop ran again');
    for (let stall = 0; stall < 2; stall++) {
      await sleep(30);
      block(700);
    }
    await sleep(30);
    answer(sent[0]?.id ?? 0, true, { serial: 'S1' });
    assert.deepEqual(await probe, { serial: 'S1' });
    assert.deepEqual(hangs, []);
  });

  it('still finds a hung worker while the event loop keeps lagging', async () => {
    const { conn, hangs } = connection();
    const call = conn.call('probe', {}, 300);
    const outcome = call.then(
      () => 'answered',
      (error: unknown) => (error instanceof BrokerError ? error.reason : 'other'),
    );
    // Every turn of the loop takes 150 ms, longer than the stall threshold.
    for (let turns = 0; turns < 40 && hangs.length === 0; turns++) {
      block(150);
      await sleep(1);
    }
    assert.deepEqual(hangs, ['probe']);
    assert.equal(await outcome, 'APPLIANCE_TIMEOUT');
  });

  it('refuses arguments the wire cannot carry without sending anything', async () => {
    const { conn, sent } = connection();
    await assert.rejects(conn.call('hasKey', { label: (() => 'x') as unknown as string }, 100), /cannot be sent/u);
    await turn();
    assert.equal(sent.length, 0);
  });
});
