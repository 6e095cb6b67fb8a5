import { FleetKek, KeyOperations, Pkcs11Token, initializeToken } from '@hsm-broker/pkcs11';
import { operationNotInRole } from './worker-operations.js';
import type { WorkerContext } from './worker-operations.js';
import type { WorkerInitMessage } from './worker-protocol.js';
import { serveWorker } from './worker-serve.js';

// The entry point of an appliance worker process. It owns one PKCS#11 module
// and its session, loaded with the appliance's environment (module-global
// settings stay per process); a native crash or hang costs this process only.

function fail(what: string): never {
  throw operationNotInRole(what);
}

function open(init: WorkerInitMessage): { context: WorkerContext; close(): void } {
  const token =
    init.role === 'none'
      ? undefined
      : Pkcs11Token.open({
          modulePath: init.modulePath,
          selector: init.selector,
          role: init.role,
          ...(init.pin === undefined ? {} : { pin: init.pin }),
        });
  const ops = token && init.role === 'user' ? new KeyOperations(token) : undefined;
  const kek = token && init.role === 'so' ? new FleetKek(token) : undefined;
  const context: WorkerContext = {
    user: () => ops ?? fail('user operations'),
    officer: () => kek ?? fail('officer operations'),
    describe: () => (token ? { token: token.description, mechanisms: ops ? ops.mechanisms() : [] } : fail('describe')),
    initializeToken: (label, soPin, userPin) => {
      if (init.role !== 'none') fail('initializeToken');
      initializeToken({ modulePath: init.modulePath, label, soPin, userPin });
    },
  };
  return { context, close: () => token?.close() };
}

serveWorker(open);
