/**
 * The Kubernetes manifests in deploy/kubernetes/ against the Kubernetes API schemas (the
 * kubernetes-models package carries the OpenAPI schemas of each kind and validates with them; no
 * download at run time), and the ConfigMap's poller.yaml against poller's own config schema.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.js';

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
const KINDS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap as never,
  'v1/Secret': Secret as never,
  'v1/Service': Service as never,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim as never,
  'apps/v1/Deployment': Deployment as never,
};

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  [k: string]: unknown;
}

async function manifests(): Promise<Array<{ file: string; doc: Manifest }>> {
  const out: Array<{ file: string; doc: Manifest }> = [];
  for (const file of (await readdir(DIR)).filter((f) => f.endsWith('.yaml')).sort())
    for (const d of parseAllDocuments(await readFile(path.join(DIR, file), 'utf8'))) {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0]?.message}`);
      out.push({ file, doc: d.toJS() as Manifest });
    }
  return out;
}

function validate(doc: Manifest): string | undefined {
  const Kind = KINDS[`${doc.apiVersion}/${doc.kind}`];
  if (!Kind) return `no schema for ${doc.apiVersion} ${doc.kind}`;
  try {
    new Kind(doc as never).validate();
    return undefined;
  } catch (err) {
    return String((err as Error).message).slice(0, 400);
  }
}

describe('deploy/kubernetes', () => {
  it('every manifest is valid against the Kubernetes API schema of its kind', async () => {
    const all = await manifests();
    expect(all.map((m) => m.doc.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'PersistentVolumeClaim',
      'Secret',
      'Service',
    ]);
    expect(
      all.map((m) => ({ file: m.file, kind: m.doc.kind, problem: validate(m.doc) })).filter((m) => m.problem),
    ).toEqual([]);
  });

  it('rejects a broken manifest (the check can fail)', async () => {
    const deployment = (await manifests()).find((m) => m.doc.kind === 'Deployment')?.doc as Manifest;
    const broken = structuredClone(deployment) as Manifest & { spec: { replicas: unknown } };
    broken.spec.replicas = 'two';
    expect(validate(broken)).toMatch(/replicas/);
  });

  it('probes /readyz and /healthz, mounts secrets as files, runs non-root on a read-only root', async () => {
    const d = (await manifests()).find((m) => m.doc.kind === 'Deployment')?.doc as never as Deployment;
    const pod = d.spec?.template.spec;
    const c = pod?.containers[0];
    expect(d.spec?.replicas).toBeGreaterThan(1);
    expect(c?.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c?.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c?.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(pod?.securityContext?.runAsNonRoot).toBe(true);
    expect(c?.resources?.requests?.['memory']).toBeDefined();
    expect(pod?.volumes?.find((v) => v.secret)?.secret?.secretName).toBe('poller-secrets');
    expect(JSON.stringify(c?.env ?? [])).not.toMatch(/secretKeyRef/);
    expect(c?.volumeMounts?.map((m) => m.mountPath)).toEqual(
      expect.arrayContaining(['/var/lib/poller', '/etc/poller']),
    );
  });

  it("the ConfigMap's poller.yaml is a valid poller config on a PostgreSQL ledger", async () => {
    const cm = (await manifests()).find((m) => m.doc.kind === 'ConfigMap')?.doc as Manifest & {
      data: Record<string, string>;
    };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'poller-k8s-'));
    try {
      const file = path.join(dir, 'poller.yaml');
      await writeFile(file, cm.data['poller.yaml'] ?? '');
      const config = loadConfig(file, { POLLER_INSTANCE: 'poller-7d9f-abcde' }, { needSecrets: false });
      expect(config.postgres).toBeDefined();
      expect(config.http?.host).toBe('0.0.0.0');
      expect(config.http?.port).toBe(9464);
      expect(config.sources[0]?.expect?.length).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/compose', () => {
  it('its poller.yaml is a valid poller config on the shared ledger, with lateness per radar', () => {
    const file = fileURLToPath(new URL('../../deploy/compose/poller.yaml', import.meta.url));
    const config = loadConfig(file, { POLLER_INSTANCE: 'poller-1', POLLER_DEMO_PASSWORD: 'x' }, { needSecrets: false });
    expect(config.postgres).toBeDefined();
    expect(config.sources[0]?.expect?.[0]?.products).toEqual(['ARBAR', 'ARPAR']);
  });
});
