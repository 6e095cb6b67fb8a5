#!/usr/bin/env node
// Attributes the CPU of a broker `.cpuprofile` (node --cpu-prof) to the
// broker's layers and prints a Markdown table, per call when given the
// number of calls the profile served:
//
//   node tools/bench/profile-layers.mjs PROFILE.cpuprofile [CALLS] [FROM_S TO_S]
//   node tools/bench/profile-layers.mjs PROFILE.cpuprofile --histogram
//
// FROM_S and TO_S bound the samples counted (seconds since the profile
// began), so start-up and key creation stay out of a load window; the
// histogram prints busy CPU per second to find the window.
//
// Each sample goes to the innermost frame on its stack that belongs to a
// known layer, so Node internals (http2 framing, the child-process channel,
// Buffer copies) count for the layer that called them. Samples whose stack
// has no known frame count as "Node runtime" (GC, timers, the event loop).
import { readFileSync } from 'node:fs';

/** Layers in the order printed; `match` sees one frame's url and function name. */
const layers = [
  { name: 'IPC to worker: child-process channel (structured clone)', match: (url) => url.includes('internal/child_process') },
  { name: 'IPC to worker: worker pipe, framing, pool (libs/fleet)', match: (url) => /libs\/fleet\/dist\/(appliance-worker|worker-|appliance\.js|awake-clock)/u.test(url) },
  { name: 'router and breakers (fleet.js, zone-router, opossum)', match: (url) => /libs\/fleet\/dist\/(fleet|zone-router|appliance-breaker|retry-budget|attempt-span)/u.test(url) || url.includes('node_modules/opossum') },
  { name: 'key registry and store (libs/keys, SQLite)', match: (url) => url.includes('libs/keys/') || url.includes('better-sqlite3') },
  { name: 'request checks, mapping, audit, metrics (apps/broker, libs/audit)', match: (url) => url.includes('apps/broker/dist') || url.includes('libs/audit/') || url.includes('libs/errors/') || url.includes('libs/proto/') },
  { name: 'telemetry (OpenTelemetry, pino)', match: (url) => url.includes('@opentelemetry') || url.includes('node_modules/pino') },
  { name: 'grpc-js and HTTP/2', match: (url) => url.includes('@grpc/grpc-js') || url.includes('internal/http2') || url.includes('protobufjs') },
];

const [file, callsText, fromText, toText] = process.argv.slice(2);
if (!file) {
  console.error('usage: node tools/bench/profile-layers.mjs PROFILE.cpuprofile [CALLS]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

/** Layer index of a node (memoised over the tree): its own if it matches, else its parent's. */
const layerOf = new Map();
function layer(id) {
  if (layerOf.has(id)) return layerOf.get(id);
  const node = byId.get(id);
  const { url, functionName } = node.callFrame;
  let found = -1;
  if (functionName === '(idle)') found = -2;
  else if (functionName === '(garbage collector)') found = -3;
  else {
    const own = layers.findIndex((entry) => entry.match(url, functionName));
    if (own !== -1) found = own;
    else if (parent.has(id)) found = layer(parent.get(id));
  }
  layerOf.set(id, found);
  return found;
}

const totals = new Map();
const deltas = profile.timeDeltas;
const fromUs = fromText === undefined ? -Infinity : Number(fromText) * 1e6;
const toUs = toText === undefined ? Infinity : Number(toText) * 1e6;
const perSecond = new Map();
let at = 0;
for (let i = 0; i < profile.samples.length; i++) {
  at += deltas[i] ?? 0;
  const index = layer(profile.samples[i]);
  if (index !== -2) perSecond.set(Math.floor(at / 1e6), (perSecond.get(Math.floor(at / 1e6)) ?? 0) + (deltas[i] ?? 0));
  if (at < fromUs || at > toUs) continue;
  totals.set(index, (totals.get(index) ?? 0) + (deltas[i] ?? 0));
}
if (callsText === '--histogram') {
  for (const [second, us] of [...perSecond].sort((a, b) => a[0] - b[0])) console.log(`${String(second).padStart(4)} s ${'#'.repeat(Math.round(us / 2e4))} ${(us / 1e4).toFixed(0)}%`);
  process.exit(0);
}
const busyUs = [...totals].filter(([index]) => index !== -2).reduce((sum, [, us]) => sum + us, 0);
const calls = callsText ? Number(callsText) : undefined;
const rows = [
  ...layers.map((entry, index) => [entry.name, totals.get(index) ?? 0]),
  ['garbage collection', totals.get(-3) ?? 0],
  ['Node runtime (event loop, timers, other)', totals.get(-1) ?? 0],
];
console.log(`| layer | share of busy CPU |${calls ? ' µs per call |' : ''}`);
console.log(`|---|---|${calls ? '---|' : ''}`);
for (const [name, us] of rows) {
  console.log(`| ${name} | ${((100 * us) / busyUs).toFixed(1)}% |${calls ? ` ${(us / calls).toFixed(0)} |` : ''}`);
}
console.log(`| **total busy** | 100% |${calls ? ` ${(busyUs / calls).toFixed(0)} |` : ''}`);
console.log(`\nbusy ${(busyUs / 1e6).toFixed(2)} s of ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s profiled${calls ? `, ${String(calls)} calls` : ''}`);
