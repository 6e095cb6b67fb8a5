import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { workspaceRoot } from './fleet-tooling.js';

// deploy/kubernetes/ checked against the Kubernetes API's JSON schemas
// (kubernetes-models validates with the schemas generated from the API's
// OpenAPI document), then against what the manifests promise each other:
// selectors that match the pods, a readiness probe on grpc.health.v1, PINs
// only by Secret reference. No cluster runs here: see the README.

const manifestDir = join(workspaceRoot, 'deploy/kubernetes');

/** The model class of each kind the directory may hold. */
const models: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
};

interface Manifest {
  file: string;
  doc: Record<string, unknown> & { kind: string; apiVersion: string; metadata?: { name?: string } };
}

function manifests(): Manifest[] {
  const found: Manifest[] = [];
  for (const file of readdirSync(manifestDir).filter((name) => name.endsWith('.yaml')).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(manifestDir, file), 'utf8'))) {
      assert.deepEqual(document.errors, [], `${file} is valid YAML`);
      const doc = document.toJS() as Manifest['doc'] | null;
      if (doc !== null) found.push({ file, doc });
    }
  }
  return found;
}

function only(kind: string): Manifest['doc'] {
  const matching = manifests().filter((manifest) => manifest.doc.kind === kind);
  assert.equal(matching.length, 1, `exactly one ${kind}`);
  const [manifest] = matching;
  assert.ok(manifest);
  return manifest.doc;
}

/** A path into a parsed manifest, failing the test with the path when it is absent. */
function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const step of path) {
    assert.ok(current !== null && typeof current === 'object', `${path.join('.')}: no ${String(step)}`);
    current = (current as Record<string | number, unknown>)[step];
  }
  return current;
}

describe('deploy/kubernetes manifests', () => {
  it('are all kinds the schema check knows, and each one passes it', () => {
    const all = manifests();
    assert.ok(all.length >= 5, 'ConfigMap, Deployment, Service, PodDisruptionBudget, NetworkPolicy');
    for (const { file, doc } of all) {
      const Model = models[`${doc.apiVersion}/${doc.kind}`];
      assert.ok(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no schema check here`);
      assert.doesNotThrow(() => new Model(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata?.name ?? ''}`);
    }
  });

  it('the schema check can fail: a wrong type in the Deployment is refused', () => {
    const broken = structuredClone(only('Deployment'));
    const container = at(broken, 'spec', 'template', 'spec', 'containers', 0) as { ports: { containerPort: unknown }[] };
    const [port] = container.ports;
    assert.ok(port);
    port.containerPort = 'fifty thousand';
    assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/);
  });

  it('selects the broker pods in the Service, the PodDisruptionBudget and the NetworkPolicy', () => {
    const podLabels = at(only('Deployment'), 'spec', 'template', 'metadata', 'labels') as Record<string, string>;
    const matches = (selector: Record<string, string>): boolean =>
      Object.entries(selector).every(([key, value]) => podLabels[key] === value);
    assert.ok(matches(at(only('Deployment'), 'spec', 'selector', 'matchLabels') as Record<string, string>));
    assert.ok(matches(at(only('Service'), 'spec', 'selector') as Record<string, string>));
    assert.ok(matches(at(only('PodDisruptionBudget'), 'spec', 'selector', 'matchLabels') as Record<string, string>));
    assert.ok(matches(at(only('NetworkPolicy'), 'spec', 'podSelector', 'matchLabels') as Record<string, string>));
    assert.equal(at(only('Service'), 'spec', 'clusterIP'), 'None', 'headless, so dns:/// resolves to every replica');
    assert.ok((at(only('Deployment'), 'spec', 'replicas') as number) >= 2);
    assert.deepEqual(at(only('NetworkPolicy'), 'spec', 'policyTypes'), ['Ingress', 'Egress']);
  });

  it('checks readiness with grpc.health.v1 through the image health probe, over mutual TLS', () => {
    const container = at(only('Deployment'), 'spec', 'template', 'spec', 'containers', 0);
    const command = at(container, 'readinessProbe', 'exec', 'command') as string[];
    assert.equal(command[1], '/opt/hsm-broker/apps/broker/dist/health-probe.js');
    for (const flag of ['--tls-ca', '--tls-cert', '--tls-key']) assert.ok(command.includes(flag), flag);
    const probeSource = readFileSync(join(workspaceRoot, 'apps/broker/src/health-probe.ts'), 'utf8');
    assert.match(probeSource, /\/grpc\.health\.v1\.Health\/Check/);
  });

  it('gets PINs and the store URL by Secret reference only, and commits no Secret', () => {
    assert.equal(manifests().filter((manifest) => manifest.doc.kind === 'Secret').length, 0);
    const pod = at(only('Deployment'), 'spec', 'template', 'spec') as {
      volumes: { name: string; secret?: { secretName: string } }[];
      containers: { env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string } } }[] }[];
    };
    const secretNames = pod.volumes.flatMap((volume) => (volume.secret ? [volume.secret.secretName] : []));
    assert.ok(secretNames.includes('hsm-broker-pins'));
    assert.ok(secretNames.includes('hsm-broker-tls'));
    const env = pod.containers[0]?.env ?? [];
    assert.equal(env.find((entry) => entry.name === 'HSMB_STORE')?.valueFrom?.secretKeyRef?.name, 'hsm-broker-store');
    for (const entry of env) assert.doesNotMatch(`${entry.name}=${entry.value ?? ''}`, /PIN|PASSWORD/i);
    const config = parse(String(at(only('ConfigMap'), 'data', 'broker.yaml'))) as { appliances: { pin: string }[] };
    for (const appliance of config.appliances) assert.match(appliance.pin, /^file:\/run\/hsm-broker\/pins\//);
  });
});
