import { closeSync, openSync, readFile } from 'node:fs';
import { promisify } from 'node:util';
import { hostname } from 'node:os';
import { AuditChain, checkpointStatement, octetCountedFrame, parseEntry, syslogMessage } from '@hsm-broker/audit';
import type { AuditCallRecord, AuditEntry, UnlinkedEntry } from '@hsm-broker/audit';
import type { AuditSettings } from './audit-config.js';
import { AuditFile } from './audit-file.js';
import { matchesQuery } from './audit-query.js';
import type { AuditQuery } from './audit-query.js';
import type { CheckpointSigner } from './audit-signing-key.js';
import type { Logger } from './logger.js';
import { SyslogForwarder } from './syslog-forwarder.js';
import type { SyslogCollectorState } from './syslog-forwarder.js';

const readDescriptor = promisify((fd: number, encoding: 'utf8', callback: (error: NodeJS.ErrnoException | null, text: string) => void) => readFile(fd, encoding, callback));

/** A call as the pipeline saw it, before it is linked into the chain. */
export type CallRecordInput = Omit<AuditCallRecord, 'seq' | 'prev' | 'type'>;

/** One entry and its line exactly as written. */
export interface WrittenEntry {
  entry: AuditEntry;
  line: string;
}

/** Where the trail stands, for GetAuditStatus. */
export interface AuditStatus {
  file: string;
  lastSeq: number;
  lastCheckpointSeq: number;
  signingKeyFingerprint: string;
  collectors: SyslogCollectorState[];
  writeFailuresTotal: number;
}

/** What the trail needs besides its settings. */
export interface AuditTrailOptions {
  settings: AuditSettings;
  log: Logger;
  /** Opens (or creates) the HSM-held signing key; retried at each checkpoint until it works. */
  openSigner: () => Promise<CheckpointSigner>;
}

/**
 * The audit trail: every entry is linked into the hash chain, appended to
 * the file, forwarded to each syslog collector and shown to live tails.
 * Writing is synchronous and small, so order is the order of calls; nothing
 * here waits on a collector, and nothing here throws into a call.
 */
export class AuditTrail {
  readonly #log: Logger;
  readonly #openSigner: () => Promise<CheckpointSigner>;
  readonly #file: AuditFile;
  readonly #chain: AuditChain;
  readonly #forwarders: SyslogForwarder[];
  readonly #listeners = new Set<(written: WrittenEntry) => void>();
  readonly #origin = { hostname: hostname(), appName: 'hsm-broker', procId: String(process.pid) };
  readonly #timer: NodeJS.Timeout;
  #signer: CheckpointSigner | undefined;
  #checkpointing: Promise<void> | undefined;
  #lastCheckpointSeq = 0;
  #lastCheckpointEntry = 0;
  #writeFailures = 0;
  #closed = false;

  constructor(options: AuditTrailOptions) {
    this.#log = options.log;
    this.#openSigner = options.openSigner;
    const { file, head } = AuditFile.open(options.settings.file, options.settings.rotateBytes, options.log);
    this.#file = file;
    this.#chain = new AuditChain(head);
    this.#forwarders = options.settings.syslog.map((collector) => new SyslogForwarder(collector, options.settings.bufferDir, options.log));
    this.#timer = setInterval(() => void this.checkpoint(), options.settings.checkpointMs);
    this.#timer.unref();
  }

  /** Opens the signing key now (generating it in the fleet on first start), so its fingerprint is known before the first checkpoint. */
  async openSigner(): Promise<string> {
    this.#signer ??= await this.#openSigner();
    return this.#signer.fingerprint;
  }

  /** Records one call. Never throws: a trail that cannot write counts and logs it. */
  record(call: CallRecordInput): void {
    this.#append({ type: 'call', ...call });
  }

  /** Writes a signed checkpoint over the chain's head, if anything was added since the last one. */
  checkpoint(): Promise<void> {
    this.#checkpointing ??= this.#checkpoint().finally(() => (this.#checkpointing = undefined));
    return this.#checkpointing;
  }

  /** Calls `listener` with every entry written from now on; returns the unsubscribe function. */
  subscribe(listener: (written: WrittenEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The newest `limit` call records matching `query`, oldest first, read from every file of the trail. */
  async search(query: AuditQuery, limit: number): Promise<{ records: WrittenEntry[]; truncated: boolean }> {
    const kept: WrittenEntry[] = [];
    let matched = 0;
    // Opened together, synchronously: a rotation renames files but open
    // descriptors keep pointing at them, so the search sees one consistent
    // snapshot of the chain.
    const descriptors = this.#file.files().map((path) => openSync(path, 'r'));
    for (const fd of descriptors) {
      let text: string;
      try {
        text = await readDescriptor(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
      for (const line of text.split('\n')) {
        if (!line.includes('"type":"call"')) continue;
        const entry = parseEntry(line);
        if (!entry || !matchesQuery(entry, query)) continue;
        matched++;
        kept.push({ entry, line });
        if (kept.length > limit) kept.shift();
      }
    }
    return { records: kept, truncated: matched > kept.length };
  }

  status(): AuditStatus {
    return {
      file: this.#file.path,
      lastSeq: this.#chain.head.seq,
      lastCheckpointSeq: this.#lastCheckpointSeq,
      signingKeyFingerprint: this.#signer?.fingerprint ?? '',
      collectors: this.#forwarders.map((forwarder) => forwarder.state()),
      writeFailuresTotal: this.#writeFailures,
    };
  }

  /** Writes a last checkpoint, then stops forwarding and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.checkpoint();
    this.#closed = true;
    for (const forwarder of this.#forwarders) forwarder.stop();
    this.#file.close();
  }

  #append(unlinked: UnlinkedEntry): AuditEntry | undefined {
    if (this.#closed) return undefined;
    const { entry, line } = this.#chain.link(unlinked);
    try {
      if (this.#file.append(line, entry.seq)) void this.checkpoint();
    } catch (error: unknown) {
      this.#writeFailures++;
      if (this.#writeFailures === 1 || this.#writeFailures % 1000 === 0) {
        this.#log.error('audit record could not be written', { file: this.#file.path, seq: entry.seq, writeFailuresTotal: this.#writeFailures, error: error instanceof Error ? error.message : String(error) });
      }
    }
    const frame = octetCountedFrame(syslogMessage(entry, line, this.#origin));
    for (const forwarder of this.#forwarders) forwarder.send(frame);
    for (const listener of this.#listeners) {
      try {
        listener({ entry, line });
      } catch {
        // A tail that fails is the tail's problem, not the call's.
      }
    }
    return entry;
  }

  async #checkpoint(): Promise<void> {
    const covers = this.#chain.head;
    if (covers.seq === 0 || covers.seq === this.#lastCheckpointEntry || this.#closed) return;
    try {
      this.#signer ??= await this.#openSigner();
      const signer = this.#signer;
      const time = new Date().toISOString();
      const signature = await signer.sign(checkpointStatement(covers, time, signer.fingerprint));
      const written = this.#append({
        type: 'checkpoint',
        time,
        covers,
        key: { fingerprint: signer.fingerprint, spki: signer.spki.toString('base64') },
        signature: signature.toString('base64'),
      });
      if (written) {
        this.#lastCheckpointSeq = covers.seq;
        this.#lastCheckpointEntry = written.seq;
      }
    } catch (error: unknown) {
      this.#log.warn('audit checkpoint could not be signed; the next one will cover these records', { coversSeq: covers.seq, error: error instanceof Error ? error.message : String(error) });
    }
  }
}
