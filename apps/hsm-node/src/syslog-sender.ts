import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { hostname } from 'node:os';
import { rfc5424Message } from '@hsm-broker/audit';
import type { SyslogTarget } from './node-config.js';

/** RFC 5424 severities the node uses. */
export type Severity = 'crit' | 'warning' | 'notice' | 'info';

const severityNumber: Record<Severity, number> = { crit: 2, warning: 4, notice: 5, info: 6 };
/** Facility 4 (security/authorisation): tamper and key-cloning events belong there. */
const facility = 4;
/** Private enterprise number 32473 is the one RFC 5612 reserves for documentation. */
const sdId = 'hsmnode@32473';

/**
 * Formats one RFC 5424 message (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`)
 * with the project's one formatter (libs/audit). Fields must never hold
 * secrets; the node passes ids, labels and serials only.
 */
export function formatSyslog(severity: Severity, msgId: string, message: string, fields: Record<string, string>, now = new Date()): string {
  return rfc5424Message({
    facility,
    severity: severityNumber[severity],
    timestamp: now.toISOString(),
    origin: { hostname: hostname(), appName: 'hsm-node', procId: String(process.pid) },
    msgId,
    structuredData: { sdId, params: Object.entries(fields) },
    msg: message,
  });
}

/** The node's event log: a line on stdout and, when configured, a syslog datagram. */
export class NodeEvents {
  readonly #target: SyslogTarget | undefined;
  readonly #socket: Socket | undefined;
  readonly #appliance: string;

  constructor(appliance: string, target: SyslogTarget | undefined) {
    this.#appliance = appliance;
    this.#target = target;
    if (target) {
      this.#socket = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
      this.#socket.on('error', () => undefined);
      this.#socket.unref();
    }
  }

  /** Records one event. */
  emit(severity: Severity, msgId: string, message: string, fields: Record<string, string> = {}): void {
    const line = formatSyslog(severity, msgId, message, { appliance: this.#appliance, ...fields });
    process.stdout.write(`${line}\n`);
    if (this.#socket && this.#target) {
      this.#socket.send(line, this.#target.port, this.#target.host, () => undefined);
    }
  }

  /** Closes the syslog socket. */
  close(): void {
    this.#socket?.close();
  }
}
