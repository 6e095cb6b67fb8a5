import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { workspaceRoot } from './fleet-tooling.js';

// docker-compose.yml as the compose implementations read it (`config`
// resolves anchors, merges and profiles and refuses an invalid file), with
// and without the `replicas` profile. Only the file is checked here: the
// PostgreSQL image is not pulled and the replicas do not start (README).

interface ComposeService {
  image?: string;
  profiles?: string[];
  environment?: Record<string, string | null>;
  ports?: ({ published?: string | number; target?: number; host_ip?: string } | string)[];
  networks?: Record<string, unknown> | string[];
  secrets?: ({ source: string } | string)[];
}

/** Every compose implementation on this machine: Debian's docker-compose 1.29 and the v2 plugin. */
function implementations(): string[][] {
  const found: string[][] = [];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) found.push(['docker-compose']);
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) found.push(['docker', 'compose']);
  return found;
}

function config(compose: string[], profile?: string): Record<string, ComposeService> {
  const [file = 'docker-compose', ...prefix] = compose;
  const args = [...prefix, ...(profile === undefined ? [] : ['--profile', profile]), 'config'];
  const result = spawnSync(file, args, { cwd: workspaceRoot, encoding: 'utf8' });
  assert.equal(result.status, 0, `${compose.join(' ')} ${args.join(' ')}: ${result.stderr}`);
  return (parse(result.stdout) as { services: Record<string, ComposeService> }).services;
}

function published(service: ComposeService | undefined): string[] {
  return (service?.ports ?? []).map((port) =>
    // 1.29 prints "127.0.0.1:50051:50051/tcp", v2 a mapping.
    typeof port === 'string' ? port.replace(/\/tcp$/, '') : `${port.host_ip ?? ''}:${String(port.published)}:${String(port.target)}`,
  );
}

const compose = implementations();
const note =
  compose.length === 0
    ? 'no compose implementation here: `sudo apt-get install docker-compose` (npm test installs it as root)'
    : undefined;
if (note !== undefined) console.error(`compose-profiles: SKIPPED: ${note}`);
if (compose.length === 1) {
  console.error(`compose-profiles: only \`${compose[0]?.join(' ') ?? ''}\` is installed; the other implementation is not checked here`);
}

describe('docker-compose.yml', { skip: note }, () => {
  for (const implementation of compose) {
    const name = implementation.join(' ');

    it(`${name}: the default services are unchanged and the replicas profile adds PostgreSQL and two brokers`, () => {
      const all = config(implementation, 'replicas');
      for (const service of ['broker', 'hsm-a1', 'hsm-a2', 'hsm-b1', 'hsm-b2', 'hsm-c1', 'hsm-c2']) {
        assert.ok(all[service], service);
        assert.equal(all[service]?.profiles, undefined, `${service} is in the default set`);
      }
      assert.deepEqual(published(all['broker']), ['127.0.0.1:50051:50051']);
      for (const service of ['postgres', 'broker-1', 'broker-2']) {
        assert.deepEqual(all[service]?.profiles, ['replicas'], `${service} only in the replicas profile`);
      }
      for (const [replica, port] of [['broker-1', 50061], ['broker-2', 50062]] as const) {
        const service = all[replica];
        assert.equal(service?.image, 'hsm-broker/broker:dev');
        assert.match(service?.environment?.['HSMB_STORE'] ?? '', /^postgres:\/\/hsmb@postgres:5432\/hsmb$/, 'no password in the URL');
        assert.deepEqual(published(service), [`127.0.0.1:${String(port)}:50051`], 'loopback only');
        const secrets = (service?.secrets ?? []).map((secret) => (typeof secret === 'string' ? secret : secret.source));
        assert.ok(secrets.includes('postgres_pgpass') && secrets.includes('user_pin'), replica);
      }
      const postgres = all['postgres'];
      assert.equal(postgres?.environment?.['POSTGRES_PASSWORD_FILE'], '/run/secrets/postgres_password');
      assert.equal(postgres?.environment?.['POSTGRES_PASSWORD'], undefined);
      assert.deepEqual(published(postgres), [], 'PostgreSQL is not published on the host');
    });
  }
});
