/**
 * The fleet dashboard: one page, its style sheet and its script, served by
 * the admin listener from memory. Plain HTML, CSS and JavaScript with no
 * external fetches (the page's Content-Security-Policy allows only its own
 * origin); it reads `/events`, a server-sent event stream of fleet views.
 */

/** The page. */
export const dashboardPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hsm-broker fleet</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>hsm-broker fleet</h1>
  <span id="ready" class="pill">…</span>
  <span id="summary"></span>
  <span id="link" class="pill link-down">connecting</span>
</header>
<main>
  <section id="zones" aria-label="zones and appliances"></section>
  <aside>
    <section class="panel" aria-label="replication">
      <h2>Replication</h2>
      <div id="replication"></div>
    </section>
    <section class="panel" aria-label="recent events">
      <h2>Recent events</h2>
      <ol id="events"></ol>
    </section>
    <section class="panel legend" aria-label="legend">
      <span class="swatch green"></span>healthy <span class="swatch amber"></span>degraded / on trial
      <span class="swatch red"></span>open / down <span class="swatch grey"></span>drained / fenced
    </section>
  </aside>
</main>
</body>
</html>
`;

/** The style sheet: compact tiles so 30 appliances fit one screen. */
export const dashboardStyle = `
:root { color-scheme: dark; --bg: #0f1419; --panel: #182028; --text: #d8dee6; --muted: #8a96a3;
  --green: #1f7a45; --amber: #a46b00; --red: #b3261e; --grey: #4a525b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 13px/1.35 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; gap: 12px; align-items: center; padding: 10px 16px; background: #0a0e12; border-bottom: 1px solid #26313c; }
h1 { font-size: 16px; margin: 0 8px 0 0; }
h2 { font-size: 13px; margin: 0 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
.pill { padding: 2px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.ready { background: var(--green); } .not-ready { background: var(--red); }
.link-up { background: #26313c; color: var(--muted); } .link-down { background: var(--amber); }
#summary { color: var(--muted); }
#link { margin-left: auto; }
main { display: grid; grid-template-columns: 1fr 320px; gap: 12px; padding: 12px 16px; }
#zones { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 12px; align-content: start; }
.zone { background: var(--panel); border-radius: 6px; padding: 8px; border: 1px solid #26313c; }
.zone.fenced { border-color: var(--grey); opacity: .8; }
.zone-head { display: flex; justify-content: space-between; margin-bottom: 6px; }
.zone-name { font-weight: 700; }
.zone-meta { color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(136px, 1fr)); gap: 6px; }
.tile { border-radius: 5px; padding: 6px 7px; color: #fff; min-height: 86px; }
.tile.green { background: var(--green); } .tile.amber { background: var(--amber); }
.tile.red { background: var(--red); } .tile.grey { background: var(--grey); }
.tile-head { display: flex; justify-content: space-between; gap: 4px; font-weight: 700; }
.tile-id { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tile-state { font-size: 11px; opacity: .9; }
.tile-stats { display: grid; grid-template-columns: 1fr 1fr; gap: 0 6px; font-size: 11px; margin-top: 2px; font-variant-numeric: tabular-nums; }
.tile-stats span:nth-child(odd) { opacity: .75; }
.fault { display: inline-block; margin-top: 3px; padding: 0 5px; border-radius: 3px; background: #000a; font-size: 10px; font-weight: 700; }
svg.spark { display: block; width: 100%; height: 22px; margin-top: 3px; }
svg.spark polyline { fill: none; stroke: #fffc; stroke-width: 1.2; }
aside { display: flex; flex-direction: column; gap: 12px; }
.panel { background: var(--panel); border-radius: 6px; padding: 8px 10px; border: 1px solid #26313c; }
#replication .state { font-weight: 700; font-size: 14px; }
#replication .ok { color: #4cc27a; } #replication .bad { color: #ff7b72; }
#events { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow-y: auto; }
#events li { padding: 3px 0; border-bottom: 1px solid #222c36; }
#events time { color: var(--muted); margin-right: 6px; font-variant-numeric: tabular-nums; }
.ev-ejected, .ev-fault-injected, .ev-repair-failed { color: #ff9d94; }
.ev-recovered, .ev-repaired, .ev-faults-cleared { color: #7ee2a0; }
.legend { color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 3px 0 8px; vertical-align: -1px; }
.swatch.green { background: var(--green); } .swatch.amber { background: var(--amber); }
.swatch.red { background: var(--red); } .swatch.grey { background: var(--grey); }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
`;

/** The script: renders each fleet view from the event stream with DOM calls (no HTML from data). */
export const dashboardScript = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child);
    return node;
  }
  function colourOf(appliance) {
    if (appliance.state === 'DRAINED') return 'grey';
    if (appliance.state === 'OPEN' || appliance.state === 'DOWN') return 'red';
    if (appliance.state === 'DEGRADED' || appliance.breaker !== 'closed') return 'amber';
    return 'green';
  }
  const number = (n, digits) => (n >= 100 ? Math.round(n).toString() : n.toFixed(digits));
  function spark(series) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 100 20');
    svg.setAttribute('preserveAspectRatio', 'none');
    const max = Math.max(1, ...series);
    const step = series.length > 1 ? 100 / (series.length - 1) : 100;
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute('points', series.map((v, i) => (i * step).toFixed(1) + ',' + (19 - (v / max) * 18).toFixed(1)).join(' '));
    svg.append(line);
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.textContent = 'calls/s over the last ' + Math.round(series.length * 5 / 60) + ' min (peak ' + number(max, 1) + ')';
    svg.append(title);
    return svg;
  }
  // Tiles and zone panels are kept and updated in place, keyed by name, so
  // the page does not flicker and a hovered tile keeps its tooltip.
  const tiles = new Map();
  const zonePanels = new Map();
  function keyed(cache, key, make) {
    let node = cache.get(key);
    if (!node) {
      node = make();
      cache.set(key, node);
    }
    return node;
  }
  function tile(appliance) {
    const colour = colourOf(appliance);
    const node = keyed(tiles, appliance.id, () => el('div', { 'data-appliance': appliance.id }));
    node.className = 'tile ' + colour;
    node.setAttribute('data-colour', colour);
    node.setAttribute('data-state', appliance.state);
    node.title = appliance.lastError ? 'last error: ' + appliance.lastError : appliance.id;
    const stats = el('div', { class: 'tile-stats' },
      el('span', {}, 'breaker'), el('span', {}, appliance.breaker),
      el('span', {}, 'in flight'), el('span', {}, String(appliance.inFlight)),
      el('span', {}, 'calls/s'), el('span', {}, number(appliance.rps, 1)),
      el('span', {}, 'p99'), el('span', {}, number(appliance.p99Ms, 1) + ' ms'),
      el('span', {}, 'ewma'), el('span', {}, number(appliance.latencyEwmaMs, 1) + ' ms'));
    const parts = [el('div', { class: 'tile-head' }, el('span', { class: 'tile-id' }, appliance.id), el('span', { class: 'tile-state' }, appliance.state)),
      stats, spark(appliance.traffic)];
    if (appliance.faults.length > 0) parts.push(el('span', { class: 'fault' }, 'FAULT ' + appliance.faults.join(', ')));
    if (appliance.versionsMissing > 0) parts.push(el('span', { class: 'fault' }, appliance.versionsMissing + ' missing'));
    node.replaceChildren(...parts);
    return node;
  }
  function zonePanel(zone, appliances) {
    const node = keyed(zonePanels, zone.name, () => el('div', { 'data-zone': zone.name }, el('div', { class: 'zone-head' }), el('div', { class: 'tiles' })));
    node.className = 'zone' + (zone.fenced ? ' fenced' : '');
    node.firstChild.replaceChildren(
      el('span', { class: 'zone-name' }, zone.name + (zone.local ? ' (local)' : '') + (zone.fenced ? ' — FENCED' : '')),
      el('span', { class: 'zone-meta' }, zone.healthy + '/' + zone.appliances + ' healthy · ' + number(zone.rps, 1) + ' calls/s'));
    const members = appliances.map(tile);
    const box = node.lastChild;
    if (members.length !== box.children.length || members.some((member, i) => box.children[i] !== member)) box.replaceChildren(...members);
    return node;
  }
  function render(view) {
    const ready = $('ready');
    ready.textContent = view.readiness.ready ? 'READY' : 'NOT READY';
    ready.className = 'pill ' + (view.readiness.ready ? 'ready' : 'not-ready');
    const a = view.readiness.checks.appliances, z = view.readiness.checks.zones;
    ready.title = 'serving appliances ' + a.serving + '/' + a.required + ', zones ' + z.serving + '/' + z.required +
      ', metadata store ' + (view.readiness.checks.metadataStore.ok ? 'ok' : 'unreachable');
    const healthy = view.appliances.filter((x) => x.state === 'HEALTHY').length;
    const rps = view.appliances.reduce((sum, x) => sum + x.rps, 0);
    $('summary').textContent = healthy + '/' + view.appliances.length + ' appliances healthy in ' + view.zones.length + ' zones · ' + number(rps, 1) + ' calls/s';
    const zones = view.zones.map((zone) => zonePanel(zone, view.appliances.filter((x) => x.zone === zone.name)));
    const container = $('zones');
    if (zones.length !== container.children.length || zones.some((zone, i) => container.children[i] !== zone)) container.replaceChildren(...zones);
    const r = view.replication;
    $('replication').replaceChildren(
      el('div', { class: 'state ' + (r.state === 'fully replicated' ? 'ok' : 'bad') }, r.state),
      el('div', {}, r.versionsMissing + ' version(s) missing · ' + r.orphans + ' orphan(s)'),
      el('div', { class: 'zone-meta' }, r.lastReconciledAt ? 'checked ' + new Date(r.lastReconciledAt).toLocaleTimeString() : 'not reconciled yet'));
    $('events').replaceChildren(...(view.events.length === 0 ? [el('li', {}, 'nothing yet')] : view.events.map((event) =>
      el('li', { class: 'ev-' + event.kind }, el('time', {}, new Date(event.at).toLocaleTimeString()), event.text + (event.count > 1 ? ' (×' + event.count + ')' : '')))));
  }
  function connect() {
    const source = new EventSource('/events');
    source.addEventListener('fleet', (message) => {
      $('link').textContent = 'live';
      $('link').className = 'pill link-up';
      render(JSON.parse(message.data));
    });
    source.onerror = () => {
      $('link').textContent = 'reconnecting';
      $('link').className = 'pill link-down';
    };
  }
  connect();
})();
`;
