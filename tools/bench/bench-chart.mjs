// reports/bench.svg, written by hand (no chart library): throughput per
// operation against the ceiling and the floor on a log scale, throughput
// against appliances, and the broker's RSS over the soak.
import { benchOperations } from './bench-operations.mjs';

const width = 960;
const font = 'font-family="DejaVu Sans, Arial, sans-serif"';
const series = [
  { key: 'ceiling', label: 'direct pkcs11js (N proc)', color: '#7f7f7f' },
  { key: 'unary', label: 'broker unary', color: '#1f77b4' },
  { key: 'batch', label: 'broker batch (100)', color: '#2ca02c' },
  { key: 'stream', label: 'broker SignStream', color: '#ff7f0e' },
];

/** @param {string} text */
const escapeXml = (text) => String(text).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);
/** @param {number} value */
const short = (value) => (value >= 10_000 ? `${Math.round(value / 1000)}k` : value >= 1000 ? `${(value / 1000).toFixed(1)}k` : String(Math.round(value)));

/**
 * Throughput bars per operation, log scale.
 * @param {any} results
 * @param {number} top
 */
function throughputPanel(results, top) {
  const parts = [];
  const rows = benchOperations
    .filter((operation) => results.broker?.unary?.[operation.id] || results.ceiling?.byOperation?.[operation.id])
    .map((operation) => ({
      title: operation.title,
      values: {
        ceiling: results.ceiling?.byOperation?.[operation.id]?.many?.opsPerSec,
        unary: results.broker?.unary?.[operation.id]?.opsPerSec,
        batch: results.broker?.batch?.[operation.id]?.opsPerSec,
        stream: results.broker?.stream?.[operation.id]?.opsPerSec,
      },
    }));
  const left = 210;
  const right = width - 30;
  const barHeight = 9;
  const groupHeight = series.length * barHeight + 10;
  const plotTop = top + 44;
  const plotHeight = Math.max(groupHeight, rows.length * groupHeight);
  const all = rows.flatMap((row) => Object.values(row.values)).concat(results.floor?.opsPerSec).filter((value) => value > 0);
  const minDecade = Math.max(0, Math.min(2, Math.floor(Math.log10(Math.min(...all, 100)))));
  const maxDecade = Math.max(minDecade + 1, Math.ceil(Math.log10(Math.max(1000, ...all))));
  const x = (value) => left + ((Math.log10(Math.max(value, 10 ** minDecade)) - minDecade) / (maxDecade - minDecade)) * (right - left);
  parts.push(`<text x="20" y="${top + 18}" font-size="16" font-weight="bold" ${font}>Throughput (ops/s, log scale)${results.broker ? ` — broker fleet ${escapeXml(results.broker.fleet)}, ${results.broker.workers} workers` : ''}</text>`);
  series.forEach((entry, index) => {
    const lx = left + index * 180;
    parts.push(`<rect x="${lx}" y="${top + 26}" width="12" height="10" fill="${entry.color}"/><text x="${lx + 16}" y="${top + 35}" font-size="11" ${font}>${escapeXml(entry.label)}</text>`);
  });
  for (let decade = minDecade; decade <= maxDecade; decade++) {
    const gx = x(10 ** decade);
    parts.push(`<line x1="${gx}" y1="${plotTop}" x2="${gx}" y2="${plotTop + plotHeight}" stroke="#ddd"/>`);
    parts.push(`<text x="${gx}" y="${plotTop + plotHeight + 14}" font-size="11" text-anchor="middle" ${font}>${short(10 ** decade)}</text>`);
  }
  rows.forEach((row, index) => {
    const gy = plotTop + index * groupHeight + 4;
    parts.push(`<text x="${left - 8}" y="${gy + groupHeight / 2}" font-size="12" text-anchor="end" ${font}>${escapeXml(row.title)}</text>`);
    series.forEach((entry, s) => {
      const value = row.values[entry.key];
      if (!(value > 0)) return;
      const by = gy + s * barHeight;
      parts.push(`<rect x="${left}" y="${by}" width="${Math.max(1, x(value) - left).toFixed(1)}" height="${barHeight - 1}" fill="${entry.color}"/>`);
      parts.push(`<text x="${(x(value) + 4).toFixed(1)}" y="${by + barHeight - 1}" font-size="9" ${font}>${short(value)}</text>`);
    });
  });
  if (results.floor?.opsPerSec > 0) {
    const fx = x(results.floor.opsPerSec);
    parts.push(`<line x1="${fx}" y1="${plotTop - 4}" x2="${fx}" y2="${plotTop + plotHeight}" stroke="#d62728" stroke-dasharray="5,3" stroke-width="1.5"/>`);
    parts.push(`<text x="${fx + 4}" y="${plotTop + plotHeight - 4}" font-size="11" fill="#d62728" ${font}>gRPC echo floor ${short(results.floor.opsPerSec)}</text>`);
  }
  return { svg: parts.join('\n'), bottom: plotTop + plotHeight + 24 };
}

/**
 * A small line chart.
 * @param {{ title: string, left: number, top: number, width: number, height: number, xLabel: string, yLabel: string, lines: Array<{ label: string, color: string, points: Array<[number, number]> }> }} chart
 */
function linePanel({ title, left, top, width: panelWidth, height, xLabel, yLabel, lines }) {
  const parts = [`<text x="${left}" y="${top + 16}" font-size="14" font-weight="bold" ${font}>${escapeXml(title)}</text>`];
  const plotLeft = left + 50;
  const plotTop = top + 40;
  const plotWidth = panelWidth - 70;
  const plotHeight = height - 80;
  const points = lines.flatMap((line) => line.points);
  if (points.length === 0) {
    parts.push(`<text x="${plotLeft}" y="${plotTop + 20}" font-size="12" fill="#888" ${font}>not measured in this run</text>`);
    return parts.join('\n');
  }
  const xMax = Math.max(...points.map(([px]) => px));
  const xMin = Math.min(0, ...points.map(([px]) => px));
  const yMax = Math.max(1, ...points.map(([, py]) => py)) * 1.1;
  const x = (value) => plotLeft + ((value - xMin) / Math.max(1e-9, xMax - xMin)) * plotWidth;
  const y = (value) => plotTop + plotHeight - (value / yMax) * plotHeight;
  parts.push(`<rect x="${plotLeft}" y="${plotTop}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#bbb"/>`);
  for (let i = 0; i <= 4; i++) {
    const value = (yMax * i) / 4;
    parts.push(`<line x1="${plotLeft}" y1="${y(value)}" x2="${plotLeft + plotWidth}" y2="${y(value)}" stroke="#eee"/>`);
    parts.push(`<text x="${plotLeft - 4}" y="${y(value) + 4}" font-size="10" text-anchor="end" ${font}>${short(value)}</text>`);
  }
  for (const px of [...new Set(points.map(([value]) => value))].filter((_, i, all) => all.length <= 8 || i % Math.ceil(all.length / 8) === 0)) {
    parts.push(`<text x="${x(px)}" y="${plotTop + plotHeight + 14}" font-size="10" text-anchor="middle" ${font}>${short(px)}</text>`);
  }
  parts.push(`<text x="${plotLeft + plotWidth / 2}" y="${plotTop + plotHeight + 30}" font-size="11" text-anchor="middle" ${font}>${escapeXml(xLabel)}</text>`);
  parts.push(`<text x="${left}" y="${plotTop - 8}" font-size="11" ${font}>${escapeXml(yLabel)}</text>`);
  lines.forEach((line, index) => {
    if (line.points.length === 0) return;
    const path = line.points.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${line.color}" stroke-width="2"/>`);
    for (const [px, py] of line.points.length <= 12 ? line.points : []) parts.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${line.color}"/>`);
    parts.push(`<rect x="${plotLeft + 8}" y="${plotTop + 6 + index * 14}" width="10" height="8" fill="${line.color}"/><text x="${plotLeft + 22}" y="${plotTop + 14 + index * 14}" font-size="10" ${font}>${escapeXml(line.label)}</text>`);
  });
  return parts.join('\n');
}

/**
 * The whole chart as an SVG document.
 * @param {any} results
 * @returns {string}
 */
export function renderChart(results) {
  const throughput = throughputPanel(results, 10);
  const panelTop = throughput.bottom + 10;
  const panelHeight = 260;
  const scaling = [...(results.scaling ?? [])].sort((a, b) => a.appliances - b.appliances);
  const soak = results.soak?.rss ?? [];
  const scalingPanel = linePanel({
    title: 'Scaling: Sign ECDSA P-256 vs appliances',
    left: 20,
    top: panelTop,
    width: width / 2 - 30,
    height: panelHeight,
    xLabel: 'appliances',
    yLabel: 'ops/s',
    lines: [
      { label: 'batch (100)', color: '#2ca02c', points: scaling.map((step) => [step.appliances, step.batch.opsPerSec]) },
      { label: 'unary', color: '#1f77b4', points: scaling.map((step) => [step.appliances, step.unary.opsPerSec]) },
    ],
  });
  const rssPanel = linePanel({
    title: `Broker RSS during the ${results.soak?.durationS ?? 0} s soak at peak`,
    left: width / 2 + 10,
    top: panelTop,
    width: width / 2 - 30,
    height: panelHeight,
    xLabel: 'seconds',
    yLabel: 'MiB',
    lines: [
      { label: 'main process', color: '#9467bd', points: soak.filter((sample) => sample.mainBytes !== null).map((sample) => [sample.atS, sample.mainBytes / 2 ** 20]) },
      { label: 'workers (sum)', color: '#8c564b', points: soak.filter((sample) => sample.workerBytes > 0).map((sample) => [sample.atS, sample.workerBytes / 2 ** 20]) },
    ],
  });
  const height = panelTop + panelHeight + 30;
  const footer = `<text x="20" y="${height - 10}" font-size="10" fill="#555" ${font}>${escapeXml(`${results.generatedAt} · ${results.machine.nproc} cores · load average at start ${results.machine.loadAverageAtStart.join(' / ')} · indicative`)}</text>`;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    throughput.svg,
    scalingPanel,
    rssPanel,
    footer,
    '</svg>',
    '',
  ].join('\n');
}
