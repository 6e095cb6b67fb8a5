// A forked load process: one MixedLoad with its share of the rates, driven by
// the hsmctl process that forked it (load-runner.ts) over the IPC channel.
import type { BrokerClient } from '@hsm-broker/client';
import type { CallRecord } from './call-history.js';
import { connectBroker } from './broker-connection.js';
import type { LoadCommand, LoadEvent } from './load-process-protocol.js';
import { MixedLoad } from './mixed-load.js';

const send = (event: LoadEvent): void => {
  process.send?.(event);
};

let client: BrokerClient | undefined;
let load: MixedLoad | undefined;
let batch: CallRecord[] = [];
const flush = (): void => {
  if (batch.length === 0) return;
  send({ type: 'records', records: batch });
  batch = [];
};
const flusher = setInterval(flush, 100);

process.on('message', (command: LoadCommand) => {
  void (async () => {
    try {
      switch (command.type) {
        case 'prepare':
          client = connectBroker(command.connection);
          load = new MixedLoad(client, command.profile, {
            prefix: command.prefix,
            process: command.process,
            onRecord: (record) => batch.push(record),
          });
          await load.prepare();
          send({ type: 'prepared' });
          break;
        case 'start':
          load?.start();
          break;
        case 'stop': {
          const totals = (await load?.stop()) ?? { issued: 0, shed: 0 };
          flush();
          clearInterval(flusher);
          send({ type: 'stopped', totals });
          client?.close();
          process.disconnect();
          break;
        }
      }
    } catch (error: unknown) {
      send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    }
  })();
});
// The parent went away: nothing is left to report to.
process.on('disconnect', () => {
  clearInterval(flusher);
  client?.close();
});
