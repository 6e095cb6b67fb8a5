import type { AuditEntry } from './audit-entry.js';

/** RFC 5424 facility 13, "log audit". */
const auditFacility = 13;
/** RFC 5612's enterprise number for documentation: our SD-ID until one is registered. */
export const syslogSdId = 'hsmb@32473';
const bom = '\uFEFF';

/** Who is sending, for the HOSTNAME, APP-NAME and PROCID fields. */
export interface SyslogOrigin {
  hostname: string;
  appName: string;
  procId: string;
}

function severityOf(entry: AuditEntry): number {
  if (entry.type === 'checkpoint' || entry.code === 0) return 6; // informational
  return entry.code === 7 || entry.code === 16 ? 4 : 5; // denied: warning; other failures: notice
}

/** PRINTUSASCII without space, at most `max` characters (RFC 5424 header fields). */
function headerField(value: string, max: number): string {
  const cleaned = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return cleaned === '' ? '-' : cleaned;
}

function paramValue(value: string): string {
  return value.replace(/[\\"\]]/g, (char) => `\\${char}`);
}

/** The parts of one RFC 5424 message; the one formatter every sender of this project uses. */
export interface Rfc5424Fields {
  facility: number;
  /** 0 (emergency) to 7 (debug). */
  severity: number;
  /** RFC 3339 time, e.g. `Date.toISOString()`. */
  timestamp: string;
  origin: SyslogOrigin;
  msgId: string;
  /** One SD element: its SD-ID and parameters; none gives the nil value `-`. */
  structuredData?: { sdId: string; params: readonly (readonly [string, string])[] } | undefined;
  msg: string;
  /** Mark MSG as UTF-8 with a BOM (RFC 5424 6.4). */
  utf8Bom?: boolean;
}

/**
 * Formats `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`: header
 * fields cut to printable ASCII and their maximum lengths, SD-PARAM values
 * escaped (RFC 5424 6.3.3).
 */
export function rfc5424Message(fields: Rfc5424Fields): string {
  const pri = fields.facility * 8 + fields.severity;
  const sd = fields.structuredData;
  const data = sd && sd.params.length > 0 ? `[${sd.sdId} ${sd.params.map(([name, value]) => `${name}="${paramValue(value)}"`).join(' ')}]` : '-';
  const { origin } = fields;
  return `<${String(pri)}>1 ${fields.timestamp} ${headerField(origin.hostname, 255)} ${headerField(origin.appName, 48)} ${headerField(origin.procId, 128)} ${headerField(fields.msgId, 32)} ${data} ${fields.utf8Bom ? bom : ''}${fields.msg}`;
}

/**
 * One audit entry as an RFC 5424 message: the SD element carries the fields
 * collectors index on, and MSG is the entry's line exactly as the file holds
 * it, so a collector's copy can be verified like the file.
 */
export function syslogMessage(entry: AuditEntry, line: string, origin: SyslogOrigin): string {
  const params: [string, string][] =
    entry.type === 'call'
      ? [
          ['seq', String(entry.seq)],
          ['operation', entry.operation],
          ['identity', entry.identity],
          ['code', String(entry.code)],
          ...(entry.keyId === undefined ? [] : [['keyId', entry.keyId] as [string, string]]),
          ['requestId', entry.requestId],
        ]
      : [
          ['seq', String(entry.seq)],
          ['covers', String(entry.covers.seq)],
        ];
  return rfc5424Message({
    facility: auditFacility,
    severity: severityOf(entry),
    timestamp: entry.time,
    origin,
    msgId: entry.type === 'call' ? 'call' : 'checkpoint',
    structuredData: { sdId: syslogSdId, params },
    msg: line,
    utf8Bom: true,
  });
}

/** RFC 6587 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function octetCountedFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${String(body.length)} `, 'ascii'), body]);
}

/**
 * Splits a TCP byte stream into octet-counted frames (RFC 6587 3.4.1), as a
 * collector reads them. Throws on a stream that is not octet-counted.
 */
export class OctetCountedReader {
  #pending = Buffer.alloc(0);

  /** Feeds bytes; returns every frame completed by them. */
  push(chunk: Buffer): string[] {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    const frames: string[] = [];
    for (;;) {
      const space = this.#pending.indexOf(0x20);
      if (space < 0) {
        if (this.#pending.length > 10) throw new Error('syslog stream: no MSG-LEN');
        break;
      }
      const lengthText = this.#pending.subarray(0, space).toString('ascii');
      if (!/^[1-9]\d{0,9}$/.test(lengthText)) throw new Error(`syslog stream: ${JSON.stringify(lengthText.slice(0, 12))} is not a MSG-LEN`);
      const length = Number(lengthText);
      if (this.#pending.length < space + 1 + length) break;
      frames.push(this.#pending.subarray(space + 1, space + 1 + length).toString('utf8'));
      this.#pending = this.#pending.subarray(space + 1 + length);
    }
    return frames;
  }
}

/** The parts of an RFC 5424 message a test or a collector looks at. */
export interface ParsedSyslogMessage {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  structuredData: string;
  /** MSG without its UTF-8 BOM. */
  msg: string;
}

/** Parses an RFC 5424 message (header, structured data, MSG); undefined when it is not one. */
export function parseSyslogMessage(message: string): ParsedSyslogMessage | undefined {
  const header = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(message);
  if (!header) return undefined;
  let rest = message.slice(header[0].length);
  let structuredData = '-';
  if (rest.startsWith('-')) {
    rest = rest.slice(1);
  } else {
    // SD elements end at a `]` not escaped with a backslash.
    const sd = /^(\[(?:[^\]\\]|\\.)*\])+/.exec(rest);
    if (!sd) return undefined;
    structuredData = sd[0];
    rest = rest.slice(sd[0].length);
  }
  const msg = rest.startsWith(' ') ? rest.slice(1) : rest;
  return {
    pri: Number(header[1]),
    version: Number(header[2]),
    timestamp: header[3] ?? '',
    hostname: header[4] ?? '',
    appName: header[5] ?? '',
    procId: header[6] ?? '',
    msgId: header[7] ?? '',
    structuredData,
    msg: msg.startsWith(bom) ? msg.slice(bom.length) : msg,
  };
}
