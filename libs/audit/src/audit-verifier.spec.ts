import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { AuditChain } from './audit-chain.js';
import { checkpointStatement, keyFingerprint } from './audit-checkpoint.js';
import { verifyAuditTrail } from './audit-verifier.js';
import type { AuditFileInput, AuditProblem } from './audit-verifier.js';

function signer(): { spki: Buffer; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { spki: publicKey.export({ format: 'der', type: 'spki' }), privateKey };
}

/** A trail of `records` calls with a checkpoint after every `every` of them. */
function trail(records: number, every: number, key = signer()): string[] {
  const chain = new AuditChain();
  const lines: string[] = [];
  const fingerprint = keyFingerprint(key.spki);
  for (let index = 1; index <= records; index++) {
    const time = new Date(Date.UTC(2026, 11, 2, 3, 0, index)).toISOString();
    lines.push(
      chain.link({ type: 'call', time, identity: 'spiffe://corp/vpc-a/payments', peer: 'ipv4:127.0.0.1:5000', operation: 'Encrypt', keyId: 'vpc-a/k', keyVersion: 1, appliances: ['az-a-1'], code: 0, latencyMs: 1.5, requestId: `r-${String(index)}` }).line,
    );
    if (index % every === 0) {
      const covers = chain.head;
      const signature = sign('sha256', checkpointStatement(covers, time, fingerprint), key.privateKey).toString('base64');
      lines.push(chain.link({ type: 'checkpoint', time, covers, key: { fingerprint, spki: key.spki.toString('base64') }, signature }).line);
    }
  }
  return lines;
}

const file = (lines: string[], name = 'audit.log'): AuditFileInput => ({ name, content: lines.map((line) => `${line}\n`).join('') });
const only = (problems: AuditProblem[]): AuditProblem => {
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  return problems[0];
};

describe('audit trail verification', () => {
  test('an untouched trail verifies, every record under a checkpoint', () => {
    const result = verifyAuditTrail([file(trail(20, 5))]);
    assert.equal(result.ok, true, JSON.stringify(result.problems));
    assert.equal(result.records, 20);
    assert.equal(result.checkpoints, 4);
    assert.equal(result.lastSeq, 24);
    assert.equal(result.unsignedEntries, 1); // the last checkpoint itself
  });

  test('an edited record is reported at its line', () => {
    const lines = trail(20, 5);
    lines[6] = (lines[6] ?? '').replace('"code":0', '"code":7');
    const problem = only(verifyAuditTrail([file(lines)]).problems);
    assert.equal(problem.kind, 'changed');
    assert.equal(problem.line, 7);
    assert.equal(problem.seq, 7);
  });

  test('an edited prev field is blamed on that record, not its neighbour', () => {
    const lines = trail(10, 5);
    lines[3] = (lines[3] ?? '').replace(/"prev":"[0-9a-f]{4}/, '"prev":"ffff');
    const problem = only(verifyAuditTrail([file(lines)]).problems);
    assert.deepEqual([problem.kind, problem.line], ['changed', 4]);
  });

  test('a deleted record is reported with the line after the gap', () => {
    const lines = trail(20, 5);
    lines.splice(8, 1);
    const problem = only(verifyAuditTrail([file(lines)]).problems);
    assert.equal(problem.kind, 'removed');
    assert.equal(problem.seq, 9);
    assert.equal(problem.line, 9);
  });

  test('an inserted record is reported at its own line', () => {
    const lines = trail(20, 5);
    const forged = (lines[10] ?? '').replace('"requestId":"r-', '"requestId":"forged-');
    lines.splice(10, 0, forged);
    const problem = only(verifyAuditTrail([file(lines)]).problems);
    assert.equal(problem.kind, 'inserted');
    assert.equal(problem.line, 11);
  });

  test('two swapped records are reported as reordered', () => {
    const lines = trail(20, 5);
    [lines[3], lines[4]] = [lines[4] ?? '', lines[3] ?? ''];
    const problem = only(verifyAuditTrail([file(lines)]).problems);
    assert.equal(problem.kind, 'reordered');
    assert.equal(problem.line, 5);
    assert.equal(problem.seq, 4);
  });

  test('a truncated tail is reported', () => {
    const text = file(trail(10, 5)).content;
    const problem = only(verifyAuditTrail([{ name: 'audit.log', content: text.slice(0, text.length - 40) }]).problems);
    assert.equal(problem.kind, 'truncated');
    assert.equal(problem.line, 12);
  });

  test('a forged checkpoint signature is detected', () => {
    const lines = trail(10, 5);
    const checkpoint = JSON.parse(lines[5] ?? '') as { signature: string };
    const signature = Buffer.from(checkpoint.signature, 'base64');
    signature[signature.length - 1] = (signature[signature.length - 1] ?? 0) ^ 1;
    lines[5] = (lines[5] ?? '').replace(checkpoint.signature, signature.toString('base64'));
    const problems = verifyAuditTrail([file(lines)]).problems;
    assert.ok(problems.some((problem) => problem.kind === 'bad-signature' && problem.line === 6), JSON.stringify(problems));
  });

  test('a checkpoint signed by another key is detected against the pin', () => {
    const key = signer();
    const lines = trail(10, 5, key);
    const pinned = verifyAuditTrail([file(lines)], { keyFingerprint: keyFingerprint(key.spki) });
    assert.equal(pinned.ok, true);
    const other = verifyAuditTrail([file(lines)], { keyFingerprint: keyFingerprint(signer().spki) });
    assert.deepEqual(other.problems.map((problem) => [problem.kind, problem.line]), [['wrong-key', 6], ['wrong-key', 12], ['unsigned', 12]]);
  });

  test('a chain rebuilt without its checkpoints fails against the pinned key, and a forged huge seq is just a gap', () => {
    const key = signer();
    const lines = trail(10, 5, key);
    const chain = new AuditChain();
    const stripped = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry['type'] !== 'checkpoint')
      .map(({ seq: _seq, prev: _prev, ...entry }) => chain.link(entry as Parameters<AuditChain['link']>[0]).line);
    const unpinned = verifyAuditTrail([file(stripped)]);
    assert.equal(unpinned.ok, true);
    assert.equal(unpinned.keyFingerprint, undefined, 'no key is reported when nothing was signed');
    const pinned = verifyAuditTrail([file(stripped)], { keyFingerprint: keyFingerprint(key.spki) });
    assert.deepEqual(pinned.problems.map((problem) => problem.kind), ['unsigned']);
    const huge = [...lines, (lines[lines.length - 1] ?? '').replace(/"seq":\d+/, '"seq":9007199254740990')];
    assert.ok(verifyAuditTrail([file(huge)]).problems.some((problem) => problem.kind === 'removed'));
  });

  test('a rewritten chain still fails on the signed checkpoint', () => {
    // Rebuild the chain honestly but with one record changed: links hold, the checkpoint does not.
    const lines = trail(10, 5);
    const chain = new AuditChain();
    const rewritten = lines.map((line, index) => {
      const { seq: _seq, prev: _prev, ...entry } = JSON.parse(index === 2 ? line.replace('"code":0', '"code":13') : line) as Record<string, unknown>;
      return chain.link(entry as Parameters<AuditChain['link']>[0]).line;
    });
    const problems = verifyAuditTrail([file(rewritten)]).problems;
    assert.ok(problems.some((problem) => problem.kind === 'changed' && problem.line === 5), JSON.stringify(problems));
  });

  test('rotated files verify as one chain in any order; a missing one is a gap', () => {
    const lines = trail(30, 4);
    const parts = [file(lines.slice(0, 12), 'audit.log.1'), file(lines.slice(12, 25), 'audit.log.2'), file(lines.slice(25), 'audit.log')];
    const whole = verifyAuditTrail([parts[2], parts[0], parts[1]] as AuditFileInput[]);
    assert.equal(whole.ok, true, JSON.stringify(whole.problems));
    assert.deepEqual(whole.files, ['audit.log.1', 'audit.log.2', 'audit.log']);
    const gap = only(verifyAuditTrail([parts[0], parts[2]] as AuditFileInput[]).problems);
    assert.equal(gap.kind, 'removed');
    assert.equal(gap.file, 'audit.log');
    const headless = only(verifyAuditTrail([parts[1], parts[2]] as AuditFileInput[]).problems);
    assert.equal(headless.kind, 'missing-head');
  });
});
