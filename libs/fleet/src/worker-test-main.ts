import type { KeyOperations } from '@hsm-broker/pkcs11';
import { operationNotInRole } from './worker-operations.js';
import { serveWorker } from './worker-serve.js';

// A worker program for tests: the real serving loop and fault injection over
// an in-memory token, so pool and pipe behaviour can be tested without
// SoftHSM. Signing the label `hang` blocks the process as a stuck C call
// would; signing `die` kills it, as a native crash would.
// @internal

function blockForever(): never {
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

const ops = {
  probe: () => ({ serial: 'fake-serial' }),
  generateRandom: (length: number) => Buffer.alloc(length, 0x5a),
  sign: (label: string) => {
    if (label === 'hang') blockForever();
    if (label === 'die') process.kill(process.pid, 'SIGKILL');
    return Buffer.from(`${label}@${String(process.pid)}`);
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
