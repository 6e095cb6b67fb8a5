import type { CallPipeline } from '../call-pipeline.js';
import type { Logger } from '../logger.js';
import type { AccessControl } from './access-control.js';
import { identityOf } from './peer-identity.js';

/**
 * The production pipeline: the caller is named by its verified client
 * certificate, every call must be allowed by the access policy (default
 * deny) and fit the caller's quota before its handler runs, and handlers
 * check the key through the same policy.
 */
export function accessPipeline(log: Logger, access: AccessControl): CallPipeline {
  return {
    log,
    identify: (call) => identityOf(call.getAuthContext()),
    admit: (context) => access.admit(context),
    finished: () => undefined,
    access,
  };
}
