import { LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { compileGlob } from './identity-glob.js';
import type { Glob } from './identity-glob.js';
import { allMethods, builtInRoles } from './method-catalog.js';
import type { OperationClass } from './method-catalog.js';

/** One `grants:` entry, compiled. */
export interface Grant {
  /** The glob as written, for messages. */
  identity: string;
  matchesIdentity: Glob;
  roles: readonly string[];
  /** Every method the grant's roles allow. */
  methods: ReadonlySet<string>;
  /** Key-id globs; undefined when the grant names no `keys` and so covers every key. */
  keys: readonly Glob[] | undefined;
  /** Pairs that must all be in the call's encryption context. */
  encryptionContext: Readonly<Record<string, string>>;
}

/** A token-bucket size: `burst` calls at once, refilled at `ratePerSecond`. */
export interface BucketLimit {
  ratePerSecond: number;
  burst: number;
}

/** One `quotas:` entry: limits per operation class for every identity the glob matches (each identity its own bucket). */
export interface QuotaRule {
  identity: string;
  matchesIdentity: Glob;
  limits: Readonly<Partial<Record<OperationClass, BucketLimit>>>;
}

/** A validated policy file. */
export interface AccessPolicy {
  grants: readonly Grant[];
  /** Built-in and custom roles, by name. */
  roles: Readonly<Record<string, readonly string[]>>;
  quotas: readonly QuotaRule[];
}

/** A policy file that cannot be used. The message names the file, the line and the field. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

type Path = (string | number)[];

const topLevelKeys = ['grants', 'roles', 'quotas'];
const grantKeys = ['identity', 'roles', 'keys', 'conditions'];
const quotaKeys = ['identity', 'symmetric', 'asymmetric', 'keyAdmin'];
const operationClasses: OperationClass[] = ['symmetric', 'asymmetric', 'keyAdmin'];
const roleNamePattern = /^[a-z][a-z0-9-]{0,63}$/;

function fieldName(path: Path): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${String(part)}]` : index === 0 ? part : `.${part}`)).join('');
}

/** Reads and validates a policy file's text; `source` names it in errors. */
export function parsePolicy(text: string, source: string): AccessPolicy {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const lineOf = (offset: number): number => lines.linePos(offset).line;
  const [syntaxError] = document.errors;
  if (syntaxError) {
    throw new PolicyError(`${source} line ${String(lineOf(syntaxError.pos[0]))}: not valid YAML: ${syntaxError.message.split('\n')[0] ?? ''}`);
  }
  const fail = (path: Path, problem: string): never => {
    const node = nodeAt(document, path);
    const line = node?.range ? ` line ${String(lineOf(node.range[0]))}` : '';
    throw new PolicyError(`${source}${line}: ${path.length === 0 ? '(top level)' : fieldName(path)}: ${problem}`);
  };
  const root: unknown = document.toJS();
  if (root === null || root === undefined) fail([], 'the file is empty; a policy needs a grants: list (an empty list denies everything)');
  const top = mapping(root, [], fail, topLevelKeys);

  const roles: Record<string, readonly string[]> = { ...builtInRoles };
  if (top['roles'] !== undefined) {
    const custom = mapping(top['roles'], ['roles'], fail);
    for (const [name, methods] of Object.entries(custom)) {
      if (!roleNamePattern.test(name)) fail(['roles', name], 'a role name is 1-64 characters of a-z 0-9 - starting with a letter');
      if (name in builtInRoles) fail(['roles', name], `is a built-in role and cannot be redefined`);
      const list = stringList(methods, ['roles', name], fail);
      list.forEach((method, index) => {
        if (!allMethods.has(method)) fail(['roles', name, index], `"${method}" is not a broker method; methods are ${[...allMethods].join(', ')}`);
      });
      roles[name] = list;
    }
  }

  const grantsRaw = top['grants'];
  if (!Array.isArray(grantsRaw)) fail(['grants'], 'expected a list of grants');
  const grants = (grantsRaw as unknown[]).map((raw, index): Grant => {
    const at: Path = ['grants', index];
    const entry = mapping(raw, at, fail, grantKeys);
    const identity = globText(entry['identity'], [...at, 'identity'], fail);
    const roleNames = stringList(entry['roles'], [...at, 'roles'], fail);
    if (roleNames.length === 0) fail([...at, 'roles'], 'expected at least one role');
    const methods = new Set<string>();
    roleNames.forEach((role, roleIndex) => {
      const roleMethods = roles[role];
      if (!roleMethods) fail([...at, 'roles', roleIndex], `"${role}" is not a role; roles are ${Object.keys(roles).join(', ')}`);
      for (const method of roleMethods ?? []) methods.add(method);
    });
    const keys = entry['keys'] === undefined ? undefined : stringList(entry['keys'], [...at, 'keys'], fail).map((glob, keyIndex) => compileGlob(globText(glob, [...at, 'keys', keyIndex], fail)));
    const encryptionContext: Record<string, string> = {};
    if (entry['conditions'] !== undefined) {
      const conditions = mapping(entry['conditions'], [...at, 'conditions'], fail, ['encryption_context']);
      const pairs = mapping(conditions['encryption_context'] ?? {}, [...at, 'conditions', 'encryption_context'], fail);
      for (const [name, value] of Object.entries(pairs)) {
        if (typeof value !== 'string') fail([...at, 'conditions', 'encryption_context', name], 'expected a string value (quote numbers and booleans)');
        encryptionContext[name] = value as string;
      }
    }
    return { identity, matchesIdentity: compileGlob(identity), roles: roleNames, methods, keys, encryptionContext };
  });

  const quotasRaw = top['quotas'] ?? [];
  if (!Array.isArray(quotasRaw)) fail(['quotas'], 'expected a list of quota rules');
  const quotas = (quotasRaw as unknown[]).map((raw, index): QuotaRule => {
    const at: Path = ['quotas', index];
    const entry = mapping(raw, at, fail, quotaKeys);
    const identity = globText(entry['identity'], [...at, 'identity'], fail);
    const limits: Partial<Record<OperationClass, BucketLimit>> = {};
    for (const operationClass of operationClasses) {
      if (entry[operationClass] === undefined) continue;
      const limit = mapping(entry[operationClass], [...at, operationClass], fail, ['ratePerSecond', 'burst']);
      const ratePerSecond = positive(limit['ratePerSecond'], [...at, operationClass, 'ratePerSecond'], fail);
      const burst = limit['burst'] === undefined ? Math.max(1, Math.ceil(ratePerSecond)) : positive(limit['burst'], [...at, operationClass, 'burst'], fail);
      limits[operationClass] = { ratePerSecond, burst };
    }
    return { identity, matchesIdentity: compileGlob(identity), limits };
  });
  return { grants, roles, quotas };
}

type Fail = (path: Path, problem: string) => never;

function nodeAt(document: Document, path: Path): YamlNode | undefined {
  // The deepest node that exists: a missing field is reported at its parent's line.
  for (let length = path.length; length >= 0; length -= 1) {
    const node: unknown = length === 0 ? document.contents : document.getIn(path.slice(0, length), true);
    if (node && typeof node === 'object' && 'range' in node) return node as YamlNode;
  }
  return undefined;
}

function mapping(value: unknown, path: Path, fail: Fail, allowed?: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(path, 'expected a mapping');
  const record = value as Record<string, unknown>;
  if (allowed) {
    for (const key of Object.keys(record)) if (!allowed.includes(key)) fail([...path, key], `unknown field; allowed fields are ${allowed.join(', ')}`);
  }
  return record;
}

function stringList(value: unknown, path: Path, fail: Fail): string[] {
  if (!Array.isArray(value)) return fail(path, 'expected a list of strings');
  value.forEach((item, index) => {
    if (typeof item !== 'string' || item === '') fail([...path, index], 'expected a non-empty string');
  });
  return value as string[];
}

function globText(value: unknown, path: Path, fail: Fail): string {
  if (typeof value !== 'string' || value === '') return fail(path, 'expected a non-empty glob string');
  if (value.length > 1024) return fail(path, 'is longer than 1024 characters');
  return value;
}

function positive(value: unknown, path: Path, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1_000_000) return fail(path, `${JSON.stringify(value)} is not valid; expected a number above 0 and at most 1000000`);
  return value;
}
