export { AuditChain, emptyHead, headOf } from './audit-chain.js';
export type { ChainHead } from './audit-chain.js';
export { checkpointSignatureProblem, checkpointStatement, keyFingerprint } from './audit-checkpoint.js';
export { entryLine, genesisHash, lineHash, parseEntry } from './audit-entry.js';
export type { AuditCallRecord, AuditCheckpoint, AuditEntry, ChainLink, UnlinkedEntry } from './audit-entry.js';
export { AuditProblemKind, verifyAuditTrail } from './audit-verifier.js';
export type { AuditFileInput, AuditProblem, AuditVerification, VerifyOptions } from './audit-verifier.js';
export { OctetCountedReader, octetCountedFrame, parseSyslogMessage, rfc5424Message, syslogMessage, syslogSdId } from './syslog-frame.js';
export type { ParsedSyslogMessage, Rfc5424Fields, SyslogOrigin } from './syslog-frame.js';
