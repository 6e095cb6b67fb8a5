import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../command-line.js';
import { parseDuration } from '../duration-text.js';
import {
  faultKinds,
  isApplianceFaultKind,
  isFaultKind,
  isZoneFaultKind,
  type FaultAction,
} from '../faults/fault-action.js';
import { targetKinds, type FaultTarget } from '../faults/fault-target.js';
import { loadOperations, type LoadOperation } from '../load/call-history.js';
import { defaultLoadProfile, scaleRates, type LoadProfile } from '../load/load-profile.js';

/** One timed step of a game day. */
export interface GameDayStep {
  atMs: number;
  action: FaultAction;
  /** Name of the phase the step opens (default: the fault, e.g. `kill hsm-a1`). */
  phase?: string;
}

/** A game-day scenario, validated. */
export interface GameDayScenario {
  name: string;
  description: string;
  target: FaultTarget;
  load: LoadProfile;
  durationMs: number;
  steps: GameDayStep[];
}

/** A mistake in a scenario file, naming the field: `steps[2].appliance: required for pause`. */
export class ScenarioError extends UsageError {}

type Fields = Record<string, unknown>;

function fail(field: string, message: string): never {
  throw new ScenarioError(`${field}: ${message}`);
}

function object(value: unknown, field: string): Fields {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(field, 'expected a mapping');
  return value as Fields;
}

function onlyKnown(fields: Fields, field: string, known: readonly string[]): void {
  for (const key of Object.keys(fields)) {
    if (!known.includes(key)) fail(field === '' ? key : `${field}.${key}`, `unknown field; expected one of ${known.join(', ')}`);
  }
}

function text(value: unknown, field: string, pattern?: RegExp): string {
  if (typeof value !== 'string' || value === '') fail(field, 'expected a non-empty string');
  if (pattern !== undefined && !pattern.test(value)) fail(field, `'${value}' does not match ${String(pattern)}`);
  return value;
}

function number(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(field, `expected a number from ${String(min)} to ${String(max)}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function duration(value: unknown, field: string, maxMs: number): number {
  if (typeof value === 'number') return number(value, field, 0, maxMs / 1000) * 1000;
  if (typeof value !== 'string') fail(field, 'expected a duration such as 30s or 2m');
  try {
    return parseDuration(value, field, { minMs: 0, maxMs });
  } catch (error: unknown) {
    throw new ScenarioError(error instanceof Error ? error.message : String(error));
  }
}

function readTarget(value: unknown): FaultTarget {
  if (value === undefined) return { kind: 'injection' };
  if (typeof value === 'string') value = { kind: value };
  const fields = object(value, 'target');
  onlyKnown(fields, 'target', ['kind', 'project', 'brokerService', 'zeroizeCommand']);
  const kind = text(fields['kind'], 'target.kind');
  if (!(targetKinds as readonly string[]).includes(kind)) {
    fail('target.kind', `expected one of ${targetKinds.join(', ')}, got '${kind}'`);
  }
  if (kind !== 'docker') {
    for (const key of ['project', 'brokerService', 'zeroizeCommand']) {
      if (fields[key] !== undefined) fail(`target.${key}`, 'only for target kind docker');
    }
    return { kind: kind as 'injection' | 'testcontainers' };
  }
  const zeroize = fields['zeroizeCommand'];
  if (zeroize !== undefined && (!Array.isArray(zeroize) || zeroize.length === 0 || !zeroize.every((part) => typeof part === 'string'))) {
    fail('target.zeroizeCommand', 'expected a list of strings (argv)');
  }
  return {
    kind: 'docker',
    project: fields['project'] === undefined ? 'hsm-broker' : text(fields['project'], 'target.project', /^[a-z0-9][a-z0-9_-]*$/),
    ...(fields['brokerService'] === undefined ? {} : { brokerService: text(fields['brokerService'], 'target.brokerService') }),
    ...(zeroize === undefined ? {} : { zeroizeCommand: zeroize }),
  };
}

function readLoad(value: unknown): LoadProfile {
  if (value === undefined) return { ...defaultLoadProfile };
  const fields = object(value, 'load');
  onlyKnown(fields, 'load', ['rateScale', 'rates', 'deadlineMs', 'writeDeadlineMs', 'payloadBytes', 'maxInFlight', 'processes']);
  let rates = { ...defaultLoadProfile.rates };
  if (fields['rateScale'] !== undefined) rates = scaleRates(rates, number(fields['rateScale'], 'load.rateScale', 0.01, 100));
  if (fields['rates'] !== undefined) {
    const given = object(fields['rates'], 'load.rates');
    onlyKnown(given, 'load.rates', loadOperations);
    for (const [op, rate] of Object.entries(given)) rates[op as LoadOperation] = number(rate, `load.rates.${op}`, 0, 10_000);
  }
  return {
    rates,
    deadlineMs: fields['deadlineMs'] === undefined ? defaultLoadProfile.deadlineMs : number(fields['deadlineMs'], 'load.deadlineMs', 50, 600_000),
    writeDeadlineMs:
      fields['writeDeadlineMs'] === undefined ? defaultLoadProfile.writeDeadlineMs : number(fields['writeDeadlineMs'], 'load.writeDeadlineMs', 50, 600_000),
    payloadBytes: fields['payloadBytes'] === undefined ? defaultLoadProfile.payloadBytes : number(fields['payloadBytes'], 'load.payloadBytes', 1, 65_536),
    maxInFlight: fields['maxInFlight'] === undefined ? defaultLoadProfile.maxInFlight : number(fields['maxInFlight'], 'load.maxInFlight', 1, 10_000),
    processes: fields['processes'] === undefined ? 1 : number(fields['processes'], 'load.processes', 1, 16),
  };
}

function readStep(value: unknown, field: string, durationMs: number): GameDayStep {
  const fields = object(value, field);
  onlyKnown(fields, field, ['at', 'fault', 'appliance', 'zone', 'ms', 'phase']);
  const atMs = duration(fields['at'], `${field}.at`, durationMs);
  const kind = text(fields['fault'], `${field}.fault`);
  if (!isFaultKind(kind)) fail(`${field}.fault`, `expected one of ${faultKinds.join(', ')}, got '${kind}'`);
  const phase = fields['phase'] === undefined ? {} : { phase: text(fields['phase'], `${field}.phase`) };
  const appliance = fields['appliance'];
  const zone = fields['zone'];
  if (isApplianceFaultKind(kind)) {
    if (zone !== undefined) fail(`${field}.zone`, `not used by ${kind}; give appliance`);
    const id = text(appliance, `${field}.appliance`);
    if (kind === 'slow') return { atMs, action: { kind, appliance: id, ms: number(fields['ms'], `${field}.ms`, 0, 60_000) }, ...phase };
    if (fields['ms'] !== undefined) fail(`${field}.ms`, 'only for slow');
    return { atMs, action: { kind, appliance: id }, ...phase };
  }
  if (appliance !== undefined) fail(`${field}.appliance`, `not used by ${kind}`);
  if (fields['ms'] !== undefined) fail(`${field}.ms`, 'only for slow');
  if (isZoneFaultKind(kind)) return { atMs, action: { kind, zone: text(zone, `${field}.zone`) }, ...phase };
  if (zone !== undefined) fail(`${field}.zone`, `not used by ${kind}`);
  return { atMs, action: { kind }, ...phase };
}

/**
 * Validates a parsed scenario document. Every mistake is reported with the
 * path of the field (`steps[1].at`), the value and what is allowed.
 */
export function validateScenario(document: unknown): GameDayScenario {
  const fields = object(document, 'scenario');
  onlyKnown(fields, '', ['name', 'description', 'target', 'load', 'duration', 'steps']);
  const name = text(fields['name'], 'name', /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
  const description = fields['description'] === undefined ? '' : text(fields['description'], 'description');
  const durationMs = duration(fields['duration'], 'duration', 24 * 3_600_000);
  if (durationMs < 1000) fail('duration', 'must be at least 1s');
  const steps = fields['steps'];
  if (!Array.isArray(steps)) fail('steps', 'expected a list of timed fault steps');
  const parsed = steps.map((step, index) => readStep(step, `steps[${String(index)}]`, durationMs));
  for (let index = 1; index < parsed.length; index += 1) {
    if ((parsed[index]?.atMs ?? 0) < (parsed[index - 1]?.atMs ?? 0)) {
      fail(`steps[${String(index)}].at`, 'steps must be in time order');
    }
  }
  return { name, description, target: readTarget(fields['target']), load: readLoad(fields['load']), durationMs, steps: parsed };
}

/** Reads and validates a scenario file; errors name the file and the field. */
export async function loadScenarioFile(path: string): Promise<GameDayScenario> {
  let document: unknown;
  try {
    document = parseYaml(await readFile(path, 'utf8'));
  } catch (error: unknown) {
    throw new ScenarioError(`${path}: ${error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error)}`);
  }
  try {
    return validateScenario(document);
  } catch (error: unknown) {
    if (error instanceof ScenarioError) throw new ScenarioError(`${path}: ${error.message}`);
    throw error;
  }
}
