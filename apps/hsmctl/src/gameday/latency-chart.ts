import type { CallRecord } from '../load/call-history.js';
import { percentile } from './gameday-analysis.js';

/** A fault step to mark on the chart. */
export interface ChartMark {
  atMs: number;
  label: string;
  /** Breaking steps are drawn red, steps that bring something back green. */
  breaking: boolean;
}

const width = 1100;
const height = 520;
const margin = { left: 70, right: 24, top: 40, bottom: 110 };
/** Throughput has a strip and a scale of its own under the latency plot, never the latency axis. */
const stripHeight = 60;
const stripGap = 14;
const plotWidth = width - margin.left - margin.right;
const plotHeight = height - margin.top - margin.bottom - stripGap - stripHeight;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (char) => `&#${String(char.charCodeAt(0))};`);
}

/**
 * Draws latency over time as SVG: p50 and p99 of the successful calls per
 * bucket on a log scale that starts at the decade below the fastest of
 * them, every failed call as a red cross at the time it ended and the
 * latency it took, successful calls per bucket as a grey area in a strip of
 * its own (with its own scale) under the latency plot, and each fault step
 * as a dashed vertical line across both with its label. Times are seconds
 * from the start of the load.
 */
export function renderLatencyChart(input: {
  title: string;
  originMs: number;
  durationMs: number;
  calls: readonly CallRecord[];
  marks: readonly ChartMark[];
  bucketMs?: number;
}): string {
  const bucketMs = input.bucketMs ?? Math.max(250, Math.round(input.durationMs / 240));
  const buckets = Math.max(1, Math.ceil(input.durationMs / bucketMs));
  const latencies: number[][] = Array.from({ length: buckets }, () => []);
  for (const call of input.calls) {
    const index = Math.floor((call.startMs - input.originMs) / bucketMs);
    if (index >= 0 && index < buckets && call.code === 'OK') latencies[index]?.push(call.endMs - call.startMs);
  }
  const series = latencies.map((values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: values.length };
  });
  const failures = input.calls.filter((call) => call.code !== 'OK');
  const highest = Math.max(
    10,
    ...series.map((point) => point.p99 ?? 0),
    ...failures.map((call) => call.endMs - call.startMs),
  );
  const lowest = Math.min(
    ...series.flatMap((point) => (point.p50 === null ? [] : [point.p50])),
    ...failures.map((call) => call.endMs - call.startMs),
    highest,
  );
  // Sub-millisecond calls exist on a local fleet; a networked one starts decades higher.
  const minLog = Math.max(-1, Math.floor(Math.log10(Math.max(lowest, 0.1))));
  const decades = Math.max(minLog + 2, Math.ceil(Math.log10(highest)));
  const y = (ms: number): number => {
    const value = Math.log10(Math.max(ms, 10 ** minLog));
    return margin.top + plotHeight - ((value - minLog) / (decades - minLog)) * plotHeight;
  };
  const x = (ms: number): number => margin.left + (Math.min(Math.max(ms, 0), input.durationMs) / input.durationMs) * plotWidth;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(width)}" height="${String(height)}" viewBox="0 0 ${String(width)} ${String(height)}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${String(margin.left)}" y="24" font-size="16" font-weight="bold">${escapeXml(input.title)}</text>`,
  );
  // Successful calls per bucket, by start time, in their own strip: 0 at its foot, the peak at its top.
  const peak = Math.max(1, ...series.map((point) => point.count));
  const plotFoot = margin.top + plotHeight;
  const stripTop = plotFoot + stripGap;
  const foot = stripTop + stripHeight;
  const area = series
    .map((point, index) => `${x((index + 0.5) * bucketMs).toFixed(1)},${(foot - (point.count / peak) * stripHeight).toFixed(1)}`)
    .join(' ');
  parts.push(
    `<polygon points="${x(0.5 * bucketMs).toFixed(1)},${String(foot)} ${area} ${x((buckets - 0.5) * bucketMs).toFixed(1)},${String(foot)}" fill="#ccc"/>`,
    `<rect x="${String(margin.left)}" y="${String(stripTop)}" width="${String(plotWidth)}" height="${String(stripHeight)}" fill="none" stroke="#333"/>`,
    `<text x="${String(margin.left - 6)}" y="${String(stripTop)}" text-anchor="end" dominant-baseline="hanging">${String(peak)}</text>`,
    `<text x="${String(margin.left - 6)}" y="${String(foot)}" text-anchor="end">0</text>`,
    `<text x="${String(margin.left - 6)}" y="${String(stripTop + stripHeight / 2)}" text-anchor="end" dominant-baseline="middle" fill="#555">calls</text>`,
  );
  // Grid: one line per decade.
  for (let decade = minLog; decade <= decades; decade += 1) {
    const ms = 10 ** decade;
    const at = y(ms).toFixed(1);
    parts.push(
      `<line x1="${String(margin.left)}" x2="${String(margin.left + plotWidth)}" y1="${at}" y2="${at}" stroke="#e4e4e4"/>`,
      `<text x="${String(margin.left - 6)}" y="${at}" text-anchor="end" dominant-baseline="middle">${latencyLabel(ms)}</text>`,
    );
  }
  const secondsStep = niceStep(input.durationMs / 1000 / 10);
  for (let seconds = 0; seconds * 1000 <= input.durationMs; seconds += secondsStep) {
    const at = x(seconds * 1000).toFixed(1);
    parts.push(
      `<line x1="${at}" x2="${at}" y1="${String(foot)}" y2="${String(foot + 5)}" stroke="#333"/>`,
      `<text x="${at}" y="${String(foot + 18)}" text-anchor="middle">${String(seconds)}s</text>`,
    );
  }
  parts.push(
    `<rect x="${String(margin.left)}" y="${String(margin.top)}" width="${String(plotWidth)}" height="${String(plotHeight)}" fill="none" stroke="#333"/>`,
  );
  // Fault steps, labels slanted below the time axis so that close steps do not collide.
  for (const mark of input.marks) {
    const at = x(mark.atMs).toFixed(1);
    const colour = mark.breaking ? '#c62828' : '#2e7d32';
    parts.push(
      `<line x1="${at}" x2="${at}" y1="${String(margin.top)}" y2="${String(foot)}" stroke="${colour}" stroke-width="1.5" stroke-dasharray="5,4"/>`,
      `<text transform="translate(${at},${String(foot + 30)}) rotate(30)" fill="${colour}">${escapeXml(mark.label)}</text>`,
    );
  }
  const line = (pick: (point: (typeof series)[number]) => number | null, colour: string): void => {
    const segments: string[][] = [[]];
    series.forEach((point, index) => {
      const value = pick(point);
      if (value === null) {
        segments.push([]);
        return;
      }
      segments.at(-1)?.push(`${x((index + 0.5) * bucketMs).toFixed(1)},${y(value).toFixed(1)}`);
    });
    for (const segment of segments.filter((points) => points.length > 0)) {
      parts.push(`<polyline points="${segment.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.6"/>`);
    }
  };
  line((point) => point.p99, '#ef6c00');
  line((point) => point.p50, '#1565c0');
  for (const call of failures) {
    const cx = x(call.endMs - input.originMs);
    const cy = y(call.endMs - call.startMs);
    parts.push(`<path d="M${(cx - 3).toFixed(1)},${(cy - 3).toFixed(1)}l6,6m0,-6l-6,6" stroke="#c62828" stroke-width="1.4"/>`);
  }
  // Legend, in the bottom row, clear of the title and of the step labels.
  const legendY = height - 12;
  const legend: [string, string][] = [
    ['#1565c0', 'p50'],
    ['#ef6c00', 'p99'],
    ['#c62828', `failed call (${String(failures.length)})`],
    ['#ccc', `successful calls per ${String(bucketMs)} ms (strip below, peak ${String(peak)})`],
  ];
  let legendX = margin.left;
  for (const [colour, label] of legend) {
    parts.push(
      `<rect x="${String(legendX)}" y="${String(legendY - 9)}" width="14" height="10" fill="${colour}"/>`,
      `<text x="${String(legendX + 18)}" y="${String(legendY)}">${escapeXml(label)}</text>`,
    );
    legendX += 34 + label.length * 6.5;
  }
  parts.push(
    `<text x="16" y="${String(margin.top + plotHeight / 2)}" transform="rotate(-90,16,${String(margin.top + plotHeight / 2)})" text-anchor="middle">latency of successful calls (log scale)</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}

function latencyLabel(ms: number): string {
  if (ms < 1) return `${ms.toFixed(1)} ms`;
  return ms < 1000 ? `${String(ms)} ms` : `${String(ms / 1000)} s`;
}

function niceStep(raw: number): number {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (step >= raw) return step;
  return 1200;
}
