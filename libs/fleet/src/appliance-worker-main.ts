import { BrokerError, Code } from '@hsm-broker/errors';
import { FleetKek, KeyOperations, Pkcs11Token, initializeToken } from '@hsm-broker/pkcs11';
import { applyFaults } from './fault-injection.js';
import type { ActiveFault } from './fault-injection.js';
import type { WorkerOperations } from './worker-operations.js';
import type { ParentMessage, WorkerInitMessage, WorkerMessage } from './worker-protocol.js';

// The entry point of an appliance worker process. It owns one PKCS#11 module
// and one session; it runs one operation at a time, so a slow or hung C call
// stalls this process only, never the broker's event loop.

function send(message: WorkerMessage): void {
  process.send?.(message);
}

type Handlers = { [K in keyof WorkerOperations]?: WorkerOperations[K] };

function userHandlers(ops: KeyOperations, token: Pkcs11Token): Handlers {
  return {
    describe: () => ({ token: token.description, mechanisms: ops.mechanisms() }),
    probe: () => ops.probe(),
    generateKey: ({ spec, label }) => ops.generateKey(spec, label),
    hasKey: ({ label }) => ops.hasKey(label),
    wrapKey: ({ spec, label, kekLabel }) => ops.wrapKey(spec, label, kekLabel),
    unwrapKey: ({ spec, label, kekLabel, key }) => {
      ops.unwrapKey(spec, label, kekLabel, key);
      return null;
    },
    destroyKey: ({ label }) => ops.destroyKey(label),
    listKeys: ({ prefix }) => ops.listKeys(prefix),
    describeKeys: ({ prefix }) => ops.describeKeys(prefix),
    publicKey: ({ spec, label }) => ops.publicKey(spec, label),
    encrypt: ({ label, iv, aad, plaintext }) => ops.encrypt(label, iv, aad, plaintext),
    decrypt: ({ label, iv, aad, ciphertext }) => ops.decrypt(label, iv, aad, ciphertext),
    sign: ({ label, scheme, hash, digest }) => ops.sign(label, scheme, hash, digest),
    verify: ({ spec, label, scheme, hash, digest, signature }) => ops.verify(spec, label, scheme, hash, digest, signature),
    generateMac: ({ label, hash, message }) => ops.generateMac(label, hash, message),
    verifyMac: ({ label, hash, message, mac }) => ops.verifyMac(label, hash, message, mac),
    generateRandom: ({ length }) => ops.generateRandom(length),
  };
}

function officerHandlers(kek: FleetKek, token: Pkcs11Token): Handlers {
  return {
    describe: () => ({ token: token.description, mechanisms: [] }),
    kekId: ({ label }) => kek.kekId(label) ?? null,
    generateKek: ({ label, kekId }) => {
      kek.generate(label, kekId);
      return null;
    },
    createEnrollmentKey: () => kek.createEnrollmentKey(),
    wrapKekFor: ({ label, peer }) => kek.wrapFor(label, peer),
    receiveKek: ({ label, kekId, wrapped }) => {
      kek.receive(label, kekId, wrapped);
      return null;
    },
  };
}

function setupHandlers(init: WorkerInitMessage): Handlers {
  return {
    initializeToken: ({ label, soPin, userPin }) => {
      initializeToken({ modulePath: init.modulePath, label, soPin, userPin });
      return null;
    },
  };
}

let handlers: Handlers | undefined;
let faults: ActiveFault[] = [];

function start(init: WorkerInitMessage): void {
  try {
    if (init.role === 'none') {
      handlers = setupHandlers(init);
    } else {
      const token = Pkcs11Token.open({
        modulePath: init.modulePath,
        selector: init.selector,
        role: init.role,
        ...(init.pin === undefined ? {} : { pin: init.pin }),
      });
      handlers = init.role === 'so' ? officerHandlers(new FleetKek(token), token) : userHandlers(new KeyOperations(token), token);
      process.once('disconnect', () => {
        token.close();
      });
    }
    send({ type: 'ready' });
  } catch (error: unknown) {
    send({ type: 'init-failed', error: BrokerError.from(error).toJSON() });
    process.disconnect?.();
  }
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'init') {
    start(message);
    return;
  }
  if (message.type === 'faults') {
    faults = message.faults;
    return;
  }
  const handler = handlers?.[message.op as keyof WorkerOperations] as ((args: unknown) => unknown) | undefined;
  try {
    if (!handler) {
      throw new BrokerError(Code.INTERNAL, `worker cannot perform ${message.op} in its role`, { reason: 'WORKER_OPERATION_UNKNOWN' });
    }
    if (faults.length > 0) applyFaults(faults, message.op);
    send({ type: 'response', id: message.id, ok: true, result: handler(message.args) });
  } catch (error: unknown) {
    send({ type: 'response', id: message.id, ok: false, error: BrokerError.from(error).toJSON() });
  }
});

process.on('disconnect', () => {
  // The broker is gone; nothing may keep this process alive holding a session.
  setImmediate(() => process.exit(0));
});
