import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { soleLeadership } from '@hsm-broker/keys';
import type { BackgroundLeadership, KeyStore } from '@hsm-broker/keys';
import type { Logger } from './logger.js';

/**
 * Joins the election for background work when the store is shared, and logs
 * every change of leadership with its term; with the embedded store this
 * broker is always the leader.
 */
export function backgroundLeadership(store: KeyStore, listen: string, log: Logger): BackgroundLeadership {
  if (!store.lead) return soleLeadership();
  // Unique per process, readable in the leader_term row: host, address and a random suffix.
  const holder = `${hostname()} ${listen} ${randomUUID().slice(0, 8)}`;
  const leadership = store.lead(holder);
  leadership.onChange((leader, term) => {
    if (leader) log.info('this replica now runs background work (reconciler, deletion window, rotation, wipe detection)', { term, holder });
    else log.warn('this replica no longer runs background work: lost the leader lock', { holder });
  });
  return leadership;
}
