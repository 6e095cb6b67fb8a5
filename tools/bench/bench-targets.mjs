// The throughput targets, judged on one run's results, and for each
// run the resource closest to its limit (what saturated first).

/**
 * @typedef {object} TargetOutcome
 * @property {string} target     what the goal is, in words
 * @property {string} measured   the figure it was judged on
 * @property {boolean | null} met  null when the run lacks what it needs
 * @property {string} [saturated] when missed: the resource closest to its limit in the run that decided it
 */

/**
 * Utilisation of each resource of one run, 0..1: the broker's main process
 * (one event loop, one core), its workers (at most one core each, at most
 * the machine), the generator (h2load uses one core per thread; grpc-js
 * processes one each) and the whole machine.
 * @param {Record<string, number | null>} cpu percent of one core per group
 * @param {{ cores: number, workers: number, generatorCores: number }} limits
 */
export function utilisation(cpu, { cores, workers, generatorCores }) {
  const share = (value, coresAvailable) => (value === null || value === undefined ? null : value / (100 * Math.max(1, Math.min(coresAvailable, cores))));
  return {
    'broker main process': share(cpu.brokerMain, 1),
    'broker workers': share(cpu.brokerWorkers, workers),
    'load generator': share(cpu.generator, generatorCores),
    'machine (all cores)': share(cpu.machine, cores),
  };
}

/**
 * Names the resource that saturated first in a run: the single process (or
 * group) nearest its own limit when one is at ≥ 85 %, else the machine when
 * its cores are ≥ 90 % busy (then the biggest consumer is named), else none
 * (the run was bound by latency or by too few calls in flight).
 * @param {import('./broker-runs.mjs').RunResult} run
 * @param {{ cores: number, workers: number }} machine
 */
export function saturatedResource(run, { cores, workers }) {
  const generatorCores = run.generator.kind === 'h2load' ? Number(/-t (\d+)/.exec(run.generator.settings)?.[1] ?? 1) : run.generator.processes;
  const used = utilisation(run.cpu, { cores, workers, generatorCores });
  const pct = (value) => `${Math.round(100 * value)}%`;
  const parts = Object.entries(used).filter(([name, value]) => value !== null && name !== 'machine (all cores)');
  parts.sort((a, b) => /** @type {number} */ (b[1]) - /** @type {number} */ (a[1]));
  const breakdown = [
    `main ${Math.round(run.cpu.brokerMain ?? 0)}%`,
    `workers ${Math.round(run.cpu.brokerWorkers ?? 0)}%`,
    `generator ${Math.round(run.cpu.generator ?? 0)}%`,
    `other ${Math.round(run.cpu.other ?? 0)}%`,
  ].join(', ');
  const [top] = parts;
  if (top && /** @type {number} */ (top[1]) >= 0.85) return `${top[0]} (${pct(top[1])} of its limit; CPU % of one core: ${breakdown})`;
  const machine = used['machine (all cores)'];
  if (machine !== null && machine >= 0.9) {
    const consumers = [['broker main process', run.cpu.brokerMain], ['broker workers', run.cpu.brokerWorkers], ['load generator', run.cpu.generator], ['other processes on the machine', run.cpu.other]];
    consumers.sort((a, b) => Number(b[1] ?? 0) - Number(a[1] ?? 0));
    return `machine CPU (${pct(machine)} of ${cores} cores; biggest: ${consumers[0][0]}; CPU % of one core: ${breakdown})`;
  }
  return `no CPU resource at its limit (machine ${machine === null ? '?' : pct(machine)}; ${breakdown}): bound by latency or calls in flight`;
}

/**
 * @param {number | null | undefined} value
 * @param {number | null | undefined} reference
 */
const shareOf = (value, reference) => (value === null || value === undefined || !reference ? null : value / reference);
const percentText = (value) => (value === null ? 'n/a' : `${Math.round(100 * value)}%`);

/**
 * Judges every target the results allow.
 * @param {any} results the report's results (see bench.mjs)
 * @returns {TargetOutcome[]}
 */
export function evaluateTargets(results) {
  const cores = results.machine.nproc;
  const workers = results.broker?.workers ?? 0;
  const limits = { cores, workers };
  /** @type {TargetOutcome[]} */
  const outcomes = [];
  const judge = (target, value, goal, run, measured) => {
    const met = value === null ? null : value >= goal;
    outcomes.push({ target, measured, met, ...(met === false && run ? { saturated: saturatedResource(run, limits) } : {}) });
  };

  const floor = results.floor?.opsPerSec;
  for (const [id, name] of [['sign-ecdsa', 'Sign ECDSA P-256'], ['encrypt', 'Encrypt AES-GCM']]) {
    const run = results.broker?.unary?.[id];
    const share = shareOf(run?.opsPerSec, floor);
    judge(`unary ${name} ≥ 70% of the echo floor`, share, 0.7, run, share === null ? 'n/a' : `${percentText(share)} (${Math.round(run.opsPerSec)} of ${Math.round(floor)} calls/s)`);
  }

  for (const [id, name, goal] of [['sign-ecdsa', 'batch Sign ECDSA P-256', 0.8], ['encrypt', 'batch Encrypt AES-GCM', 0.5], ['sign-rsa', 'batch Sign RSA-2048', 0.9]]) {
    const run = results.broker?.batch?.[id];
    const ceiling = results.ceiling?.byOperation?.[id]?.many;
    const share = shareOf(run?.opsPerSec, ceiling?.opsPerSec);
    judge(
      `${name} ≥ ${Math.round(goal * 100)}% of direct pkcs11js (${results.ceiling?.processes ?? '?'} processes)`,
      share,
      goal,
      run,
      share === null ? 'n/a' : `${percentText(share)} (${Math.round(run.opsPerSec)} of ${Math.round(ceiling.opsPerSec)} ops/s)`,
    );
  }

  for (const entry of results.latency ?? []) {
    const half = entry.at.find((point) => point.fraction === 0.5);
    if (!half) continue;
    const met = half.p99Ms === null ? null : half.p99Ms <= 5;
    outcomes.push({
      target: `${entry.title}: p99 ≤ 5 ms at 50% of peak`,
      measured: half.p99Ms === null ? 'n/a' : `p99 ${half.p99Ms.toFixed(2)} ms at ${Math.round(half.opsPerSec)} calls/s`,
      met,
      ...(met === false ? { saturated: saturatedResource(half, limits) } : {}),
    });
  }

  if (results.scaling?.length >= 2) {
    const steps = [...results.scaling].sort((a, b) => a.appliances - b.appliances);
    let met = true;
    let saturated;
    /** @type {number[]} */
    const busyAt = [];
    for (let i = 1; i < steps.length; i++) {
      const grew = steps[i].batch.opsPerSec >= 1.05 * steps[i - 1].batch.opsPerSec;
      const machineBusy = (steps[i - 1].batch.cpu.machine ?? 0) >= 90 * cores;
      if (machineBusy) busyAt.push(steps[i - 1].appliances);
      if (!grew && !machineBusy) {
        met = false;
        saturated = `${steps[i].appliances} appliances: ${saturatedResource(steps[i].batch, { cores, workers: steps[i].workers })}`;
        break;
      }
    }
    outcomes.push({
      target: 'batch Sign throughput grows with appliances until the cores run out',
      measured:
        steps.map((step) => `${step.appliances}: ${Math.round(step.batch.opsPerSec)}`).join(', ') +
        ' ops/s' +
        (busyAt.length === 0 ? '' : `; every core busy at ${busyAt.join(', ')} appliance(s), so no growth was due after those`),
      met,
      ...(saturated ? { saturated } : {}),
    });
  }

  if (results.soak?.growth) {
    const { secondHalfGrowth, startBytes, endBytes } = results.soak.growth;
    const met = secondHalfGrowth <= 0.1;
    outcomes.push({
      target: `broker RSS flat over the ${results.soak.durationS} s soak (≤ 10% growth in its second half)`,
      measured: `${(startBytes / 2 ** 20).toFixed(0)} MiB at start, ${(endBytes / 2 ** 20).toFixed(0)} MiB after; second half ${secondHalfGrowth >= 0 ? '+' : ''}${(100 * secondHalfGrowth).toFixed(1)}%`,
      met,
    });
  }
  return outcomes;
}
