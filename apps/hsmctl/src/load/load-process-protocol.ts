import type { CallRecord } from './call-history.js';
import type { BrokerConnection } from './broker-connection.js';
import type { LoadProfile } from './load-profile.js';
import type { LoadTotals } from './mixed-load.js';

/** Parent → load process. */
export type LoadCommand =
  | { type: 'prepare'; connection: BrokerConnection; profile: LoadProfile; prefix: string; process: number }
  | { type: 'start' }
  | { type: 'stop' };

/** Load process → parent. Records come in batches to keep IPC cheap. */
export type LoadEvent =
  | { type: 'prepared' }
  | { type: 'records'; records: CallRecord[] }
  | { type: 'stopped'; totals: LoadTotals }
  | { type: 'failed'; message: string };
