#!/usr/bin/env node
// The log-leak scan that closes the integration stage: every test broker kept
// its full log (debug level) in reports/broker-logs/NAME.log and, beside it,
// NAME.secrets, the PINs it was configured with and the plaintexts the tests
// sent it or got back (base64, one a line; see
// apps/broker/src/testing/log-capture.ts). A secret found in a log line, as
// text, JSON-escaped text, base64, base64url or hex, fails the scan. Each
// log is searched for its own broker's secrets. The secret itself is never
// printed: only where it was found.
//
//   node tools/test/scan-broker-logs.mjs [--require-logs] [DIR]
//
// --require-logs: finding no log at all is a failure (the capture broke).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));
const args = process.argv.slice(2);
const requireLogs = args.includes('--require-logs');
const dir = args.find((arg) => !arg.startsWith('--')) ?? process.env.HSMB_TEST_LOG_DIR ?? join(workspaceRoot, 'reports', 'broker-logs');
const shortestSecret = 6;

/** Every spelling a secret could have in a JSON log line. */
function formsOf(bytes) {
  const forms = [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (!text.includes('\uFFFD')) forms.push(text, JSON.stringify(text).slice(1, -1));
  return [...new Set(forms.filter((form) => form.length >= shortestSecret))];
}

function readSecrets(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => Buffer.from(line, 'base64'))
    .filter((bytes) => bytes.length >= shortestSecret);
}

const logs = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.log')).sort() : [];
if (logs.length === 0) {
  console.log(`scan-broker-logs: no broker logs in ${dir}`);
  process.exit(requireLogs ? 1 : 0);
}

const perLog = new Map(logs.map((name) => [name, readSecrets(join(dir, name.replace(/\.log$/, '.secrets'))).map(formsOf)]));
let lines = 0;
const leaks = [];
for (const name of logs) {
  const own = perLog.get(name).flat();
  const text = readFileSync(join(dir, name), 'utf8');
  let number = 0;
  for (const line of text.split('\n')) {
    number++;
    if (line === '') continue;
    lines++;
    const hit = own.find((form) => line.includes(form));
    if (hit !== undefined) leaks.push(`${name}:${String(number)}: a secret given to this broker (${String(hit.length)} characters) appears in the line`);
  }
}
const secrets = [...perLog.values()].reduce((sum, list) => sum + list.length, 0);
if (leaks.length > 0) {
  console.error(`scan-broker-logs: ${String(leaks.length)} log line(s) carry a PIN or plaintext:`);
  for (const leak of leaks.slice(0, 50)) console.error(`  ${leak}`);
  console.log(`scan-broker-logs: FAILED: ${String(logs.length)} logs, ${String(lines)} lines, ${String(secrets)} secrets checked`);
  process.exit(1);
}
console.log(`scan-broker-logs: ${String(logs.length)} logs, ${String(lines)} lines, ${String(secrets)} secrets checked; no PIN or plaintext in any line`);
