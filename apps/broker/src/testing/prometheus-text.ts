/** One sample of a Prometheus text exposition. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape: samples, and the HELP and TYPE of each metric family. */
export interface Scrape {
  samples: PromSample[];
  help: Map<string, string>;
  type: Map<string, string>;
  /** Sum of the samples named `name` whose labels include every one of `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const samplePattern = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * Parses the Prometheus text format (version 0.0.4) as a scraper would,
 * so tests read figures the way Prometheus does, not through prom-client.
 * @internal
 */
export function parseScrape(text: string): Scrape {
  const samples: PromSample[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name = '', ...rest] = line.slice(7).split(' ');
      help.set(name, rest.join(' '));
    } else if (line.startsWith('# TYPE ')) {
      const [name = '', kind = ''] = line.slice(7).split(' ');
      type.set(name, kind);
    } else if (line.trim() !== '' && !line.startsWith('#')) {
      const match = samplePattern.exec(line);
      if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, key = '', value = ''] of (match[2] ?? '').matchAll(labelPattern)) labels[key] = value.replace(/\\(.)/g, '$1');
      samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
    }
  }
  return {
    samples,
    help,
    type,
    sum(name, labels = {}) {
      return samples
        .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
        .reduce((total, sample) => total + sample.value, 0);
    },
  };
}

/** Fetches `/metrics` from an admin listener with a real HTTP client and parses it. */
export async function scrape(adminAddress: string): Promise<Scrape> {
  const response = await fetch(`http://${adminAddress}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${String(response.status)}`);
  const contentType = response.headers.get('content-type') ?? '';
  if (!contentType.startsWith('text/plain')) throw new Error(`/metrics content type is ${contentType}`);
  return parseScrape(await response.text());
}
