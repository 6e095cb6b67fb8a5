import type { KeyOperations } from '@hsm-broker/pkcs11';
import { operationNotInRole } from './worker-operations.js';
import { serveWorker } from './worker-serve.js';

// A worker program for tests: the real serving loop and fault injection over
// an in-memory token, so pool and pipe behaviour can be tested without
// SoftHSM. Signing the label `hang` blocks the process (or, run concurrently,
// its session) as a stuck C call would; signing `die` kills it, as a native
// crash would; `slow:<ms>` takes that long. A signature reads
// `label@pid@calls`, where `calls` is how many signs ran at once when it
// started; probe answers with that number too, which is 0 for a call run alone.
// @internal

function blockForever(): never {
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

let running = 0;
const slowMs = (label: string): number => (label.startsWith('slow:') ? Number(label.slice(5)) : 0);

const ops = {
  probe: () => ({ serial: `fake-serial@${String(running)}` }),
  generateRandom: (length: number) => Buffer.alloc(length, 0x5a),
  sign: (label: string) => {
    if (label === 'hang') blockForever();
    if (label === 'die') process.kill(process.pid, 'SIGKILL');
    const ms = slowMs(label);
    if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    return Buffer.from(`${label}@${String(process.pid)}@1`);
  },
  signConcurrently: async (label: string) => {
    if (label === 'die') process.kill(process.pid, 'SIGKILL');
    running++;
    const atStart = running;
    try {
      if (label === 'hang') await new Promise(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, slowMs(label)));
      return Buffer.from(`${label}@${String(process.pid)}@${String(atStart)}`);
    } finally {
      running--;
    }
  },
} as unknown as KeyOperations;

serveWorker(() => ({
  context: {
    user: () => ops,
    officer: () => {
      throw operationNotInRole('officer operations');
    },
    describe: () => ({
      token: { label: 'fake', serial: 'fake-serial', manufacturer: 'test', model: 'fake', slotId: 0 },
      mechanisms: ['CKM_ECDSA'],
    }),
    initializeToken: () => {
      throw operationNotInRole('initializeToken');
    },
  },
  close: () => undefined,
}));
