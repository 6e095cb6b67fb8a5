import { BrokerError, Code } from '@hsm-broker/errors';
import type { CloneOperation } from '@hsm-broker/pkcs11';
import type { Appliance } from './appliance.js';
import type { ApplianceTimeouts } from './appliance-config.js';
import { ApplianceWorker } from './appliance-worker.js';
import type { OfficerSession } from './fleet-config.js';

/**
 * Runs `body` with a security-officer session on one appliance: at its clone
 * endpoint when it has one, else in a worker process of its own, since login
 * state is per process and the crypto workers stay logged in as the user.
 */
export async function withOfficerSession<T>(appliance: Appliance, timeouts: ApplianceTimeouts, body: (session: OfficerSession) => Promise<T>): Promise<T> {
  const clone = appliance.clone;
  if (clone) {
    return clone.officer((session) => body({ call: (op, args) => session.call(op as CloneOperation, args as never) as never }), timeouts.slowCallMs);
  }
  if (appliance.config.soPin === undefined) {
    throw new BrokerError(Code.FAILED_PRECONDITION, `appliance ${appliance.id} has no security-officer PIN configured`, {
      reason: 'SO_PIN_MISSING',
    });
  }
  const worker = await ApplianceWorker.start({
    applianceId: appliance.id,
    modulePath: appliance.config.modulePath,
    selector: appliance.config.selector,
    role: 'so',
    pin: appliance.config.soPin,
    env: appliance.config.env,
    startTimeoutMs: timeouts.startMs,
  });
  try {
    return await body({ call: (op, args) => worker.call(op, args, timeouts.slowCallMs) });
  } finally {
    await worker.stop();
  }
}
