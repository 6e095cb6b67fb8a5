import { BrokerError } from '@hsm-broker/errors';

/**
 * Runs `first`; if it has not settled after `delayMs`, asks `second` for a
 * hedge (undefined when no appliance or no retry budget is left) and runs it
 * too. The first answer wins. A caller's error (anything but an appliance
 * fault) would repeat anywhere, so it is reported at once; appliance faults
 * are reported once every attempt started has failed.
 */
export function hedgedCall<T>(first: () => Promise<T>, second: () => (() => Promise<T>) | undefined, delayMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let pending = 1;
    let timerPending = true;
    let lastError: unknown;
    const won = (result: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const failed = (error: unknown): void => {
      lastError = error;
      pending--;
      if (settled) return;
      const callerFault = BrokerError.from(error).failureClass !== 'appliance';
      if (callerFault || (pending === 0 && !timerPending)) {
        settled = true;
        clearTimeout(timer);
        reject(error);
      }
    };
    first().then(won, failed);
    const timer = setTimeout(() => {
      timerPending = false;
      if (settled) return;
      const hedge = second();
      if (!hedge) {
        if (pending === 0) {
          settled = true;
          reject(lastError);
        }
        return;
      }
      pending++;
      hedge().then(won, failed);
    }, delayMs);
  });
}
