import { randomUUID } from 'node:crypto';
import type { KeyRegistry, SweepReport } from '@hsm-broker/keys';
import type { AuditTrail } from './audit-trail.js';
import { keyStateOf } from './call-facts.js';

/** Who the audit trail names for changes the broker makes on its own schedule. */
export const systemIdentity = 'system';

/**
 * Writes one audit record per key a background sweep changed: a deletion
 * window that ran out destroys the key, a rotation period that ran out makes
 * a new primary version. Nobody called an RPC for these, but they are key
 * lifecycle changes, so they are in the trail with their before and after
 * states like the calls that schedule them.
 */
export function auditSweep(audit: AuditTrail, registry: KeyRegistry, kind: 'deletion' | 'rotation', report: SweepReport): void {
  const time = new Date().toISOString();
  for (const keyId of report.done) {
    let after: Record<string, unknown> = { keyState: 'DESTROYED' };
    let before: Record<string, unknown> = { keyState: 'PENDING_DELETION' };
    if (kind === 'rotation') {
      try {
        after = keyStateOf(registry.describeKey(keyId));
        before = { primaryVersion: Number(after['primaryVersion']) - 1 };
      } catch {
        after = {};
        before = {};
      }
    }
    audit.record({
      time,
      identity: systemIdentity,
      peer: 'local',
      operation: kind === 'deletion' ? 'ScheduledKeyDestruction' : 'ScheduledKeyRotation',
      keyId,
      appliances: [],
      code: 0,
      latencyMs: 0,
      requestId: randomUUID(),
      before,
      after,
    });
  }
}
