import { BrokerError, Code } from '@hsm-broker/errors';
import { FleetKek, KeyOperations, Pkcs11Token, initializeToken } from '@hsm-broker/pkcs11';
import type { SessionInit, SessionReply, SessionRequest } from './token-session.js';

// A child process holding one PKCS#11 session on the node's own token. Login
// state is per process in PKCS#11, so the crypto-user session and each
// officer session live in processes of their own; the node's main process
// never loads the module, and zeroize can kill every session at once.

type Handler = (args: Record<string, unknown>) => unknown;

let handlers: Record<string, Handler> = {};

function open(init: SessionInit): Record<string, Handler> {
  if (init.role === 'init') {
    return {
      initializeToken: (args) => {
        initializeToken({ modulePath: init.modulePath, label: init.label, soPin: String(args['soPin']), userPin: String(args['userPin']) });
        return null;
      },
    };
  }
  const token = Pkcs11Token.open({ modulePath: init.modulePath, selector: { token: init.label }, role: init.role, pin: init.pin ?? '' });
  process.once('disconnect', () => token.close());
  if (init.role === 'user') {
    const ops = new KeyOperations(token);
    return {
      describe: () => token.description,
      wrapKey: (args) => ops.wrapKey(args['spec'] as never, String(args['label']), String(args['kekLabel'])),
      unwrapKey: (args) => {
        ops.unwrapKey(args['spec'] as never, String(args['label']), String(args['kekLabel']), args['key'] as never);
        return null;
      },
    };
  }
  const kek = new FleetKek(token);
  return {
    kekId: (args) => kek.kekId(String(args['label'])) ?? null,
    generateKek: (args) => {
      kek.generate(String(args['label']), String(args['kekId']));
      return null;
    },
    createEnrollmentKey: () => kek.createEnrollmentKey(),
    wrapKekFor: (args) => kek.wrapFor(String(args['label']), args['peer'] as never),
    receiveKek: (args) => {
      kek.receive(String(args['label']), String(args['kekId']), args['wrapped'] as Buffer);
      return null;
    },
  };
}

function reply(message: SessionReply): void {
  process.send?.(message);
}

process.on('message', (message: SessionInit | SessionRequest) => {
  if (message.type === 'init') {
    try {
      handlers = open(message);
      reply({ type: 'ready' });
    } catch (error: unknown) {
      reply({ type: 'failed', error: BrokerError.from(error).toJSON() });
      process.disconnect?.();
    }
    return;
  }
  try {
    const handler = handlers[message.op];
    if (!handler) throw new BrokerError(Code.INVALID_ARGUMENT, `op: ${message.op} is not available in this session`, { reason: 'CLONE_OPERATION_UNKNOWN' });
    reply({ type: 'response', id: message.id, ok: true, result: handler(message.args) });
  } catch (error: unknown) {
    reply({ type: 'response', id: message.id, ok: false, error: BrokerError.from(error).toJSON() });
  }
});

process.on('disconnect', () => setImmediate(() => process.exit(0)));
