import { formatDuration } from '../duration-text.js';
import type { GameDayAnalysis } from './gameday-analysis.js';
import type { GameDayScenario } from './scenario-file.js';

function ms(value: number | null): string {
  return value === null ? '–' : `${value.toFixed(1)} ms`;
}

function share(value: number | null): string {
  return value === null ? '–' : `${(value * 100).toFixed(1)} %`;
}

function errors(byCode: Record<string, number>): string {
  const entries = Object.entries(byCode).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '0' : entries.map(([code, count]) => `${code} ${String(count)}`).join(', ');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The game day's Markdown summary: what ran, a table per phase, and how each figure is measured. */
export function renderGameDayMarkdown(input: {
  scenario: GameDayScenario;
  driver: string;
  address: string;
  startedAt: Date;
  analysis: GameDayAnalysis;
  shed: number;
}): string {
  const { scenario, analysis } = input;
  const lines: string[] = [
    `# Game day: ${scenario.name}`,
    '',
    ...(scenario.description === '' ? [] : [scenario.description, '']),
    `- Started: ${input.startedAt.toISOString()}, ran ${formatDuration(scenario.durationMs)} against \`${input.address}\` (fault driver: ${input.driver})`,
    `- Load: ${Object.entries(scenario.load.rates).filter(([, rate]) => rate > 0).map(([op, rate]) => `${op} ${String(Number(rate.toFixed(2)))}/s`).join(', ')}; deadline ${String(scenario.load.deadlineMs)} ms; ${String(scenario.load.processes)} load process(es)`,
    `- Calls: ${String(analysis.total.calls)}, failed: ${errors(analysis.total.errors)}; p50 ${ms(analysis.total.p50Ms)}, p99 ${ms(analysis.total.p99Ms)}${input.shed > 0 ? `; ${String(input.shed)} calls shed by the load generator (too many in flight)` : ''}`,
    '',
    '![latency over time](latency.svg)',
    '',
    '## Phases',
    '',
    '| phase | from | to | calls | errors | p50 | p99 | max | traffic to affected part (before → during) | time to shift traffic | time to repair |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const phase of analysis.phases) {
    lines.push(
      `| ${cell(phase.name)} | ${formatDuration(phase.fromMs)} | ${formatDuration(phase.toMs)} | ${String(phase.calls)} | ${cell(errors(phase.errors))} | ${ms(phase.p50Ms)} | ${ms(phase.p99Ms)} | ${ms(phase.maxMs)} | ${phase.affected.length === 0 ? '–' : `${share(phase.baselineShare)} → ${share(phase.share)}`} | ${ms(phase.shiftMs)} | ${ms(phase.repairMs)} |`,
    );
  }
  lines.push('', '## Steps', '');
  for (const phase of analysis.phases.filter((candidate) => candidate.step !== undefined)) {
    lines.push(
      `- ${formatDuration(phase.fromMs)}: **${cell(phase.step ?? '')}** → ${cell(phase.driverAction ?? '')}${phase.affected.length === 0 ? '' : ` (affects ${phase.affected.join(', ')})`}${phase.driverError === undefined ? '' : ` — **FAILED**: ${cell(phase.driverError)}`}`,
    );
  }
  lines.push(
    '',
    '## How the figures are measured',
    '',
    '- Calls belong to the phase in which they started; latency is from the client, start to end, successful and failed calls alike.',
    '- Traffic figures come from polling GetFleetStatus every 200 ms: `requests_total` per appliance counts attempts routed there (an attempt that failed and was retried elsewhere counts on both), so every time is an upper bound within one poll.',
    '- *Time to shift traffic*: from a breaking step until the affected appliances received at most 5 % of the attempts over the last second. When their share was already near zero before (not the local zone), the shift is immediate by construction: read the share column.',
    '- *Time to repair*: from a step that brings something back (and from a zeroize or broker restart) until every affected appliance was HEALTHY with a CLOSED breaker and no key versions missing.',
    '- Raw data: `report.json` (scenario, phases, fleet samples, faults) and `history.jsonl` (every call).',
    '',
  );
  return lines.join('\n');
}
