/**
 * Applies the rendered phases with `kubectl apply --server-side`, one phase at a time,
 * waiting for each to be ready before the next (the migration Job completes before any
 * new code serves), and prints progress. Before anything it checks that the operators'
 * CRDs are installed and names the missing prerequisite, and it creates the Secrets
 * Baton generates itself (Redis password, capability-token key pair, the dispatchers'
 * invoke credential) when absent: their values never appear in any manifest. Secrets
 * the config names but Baton cannot make (tool credentials, the LLM key) must exist
 * already; a missing one is named before anything is applied, rather than leaving
 * pods stuck in ContainerCreating.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '../../tools/lib/capability.ts';
import type { DeployConfig } from './config.ts';
import type { Manifest } from './manifest.ts';
import { toolSecretsOf } from './check-references.ts';
import { names } from './names.ts';
import type { Rendered } from './render.ts';
import { formatManifests } from './output.ts';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}
export type Kubectl = (args: string[], input?: string) => Promise<KubectlResult>;

export const FIELD_MANAGER = 'baton';

export function kubectl(extraArgs: string[] = []): Kubectl {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = spawn('kubectl', [...extraArgs, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new Error('kubectl is not installed or not on PATH') : err),
      );
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      child.stdin.end(input ?? '');
    });
}

async function must(k: Kubectl, args: string[], input?: string): Promise<string> {
  const r = await k(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Each CRD Baton renders objects of, and what installs it. */
const PREREQUISITES = [
  { crd: 'clusters.postgresql.cnpg.io', what: 'CloudNativePG (1.2x/1.30)', knativeOnly: false },
  { crd: 'poolers.postgresql.cnpg.io', what: 'CloudNativePG (1.2x/1.30)', knativeOnly: false },
  { crd: 'scaledobjects.keda.sh', what: 'KEDA (≥ 2.17)', knativeOnly: false },
  { crd: 'triggerauthentications.keda.sh', what: 'KEDA (≥ 2.17)', knativeOnly: false },
  { crd: 'services.serving.knative.dev', what: 'Knative Serving (1.2x)', knativeOnly: true },
];

export async function checkPrerequisites(k: Kubectl, c: DeployConfig): Promise<void> {
  const needed = PREREQUISITES.filter((p) => c.mode === 'knative' || !p.knativeOnly);
  const r = await k(['get', 'crd', ...needed.map((p) => p.crd), '--ignore-not-found', '-o', 'name']);
  if (r.code !== 0) throw new Error(`cannot reach the cluster (kubectl get crd):\n${r.stderr.trim()}`);
  const present = new Set(r.stdout.split('\n').map((l) => l.trim().replace(/^customresourcedefinition\.apiextensions\.k8s\.io\//, '')));
  const missing = needed.filter((p) => !present.has(p.crd));
  if (missing.length) {
    const lines = missing.map((p) => `  ${p.crd}: install ${p.what}`);
    const hint = c.mode === 'knative' && missing.some((p) => p.knativeOnly) ? '\n(or deploy without Knative: --mode worker)' : '';
    throw new Error(`the cluster lacks CRDs Baton needs (see the README, "Run on Kubernetes" → "Prerequisites"):\n${lines.join('\n')}${hint}`);
  }
}

/** Creates the Secrets Baton generates, unless they exist (re-deploys keep them). */
export async function ensureSecrets(k: Kubectl, c: DeployConfig, log: (line: string) => void): Promise<void> {
  const n = names(c);
  const wanted: Array<{ name: string; files: () => Record<string, string> }> = [];
  if ('embedded' in c.redis) wanted.push({ name: n.redisSecret, files: () => ({ [n.redisPasswordKey]: randomBytes(24).toString('hex') }) });
  // 256 random bits, URL-safe: dispatchers send it, function pods compare it in constant time.
  if (c.mode === 'knative') wanted.push({ name: n.invokeSecret, files: () => ({ [n.invokeKey]: randomBytes(32).toString('base64url') }) });
  const exists = async (name: string) => (await must(k, ['-n', c.namespace, 'get', 'secret', name, '--ignore-not-found', '-o', 'name'])).trim() !== '';
  const signing = !(await exists(n.signingSecret));
  const verify = !(await exists(n.verifySecret));
  if (signing || verify) {
    if (!signing || !verify) throw new Error(`only one of ${n.signingSecret} and ${n.verifySecret} exists; delete it so both are made as a pair`);
    const pair = generateKeyPair();
    wanted.push({ name: n.signingSecret, files: () => ({ [n.signingKey]: pair.privateKeyPem }) });
    wanted.push({ name: n.verifySecret, files: () => ({ [n.verifyKey]: pair.publicKeyPem }) });
  }
  for (const w of wanted) {
    if (await exists(w.name)) continue;
    // From files, so no secret value is ever on a command line.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-secret-'));
    try {
      const args = ['-n', c.namespace, 'create', 'secret', 'generic', w.name];
      for (const [key, value] of Object.entries(w.files())) {
        fs.writeFileSync(path.join(dir, key), value, { mode: 0o600 });
        args.push(`--from-file=${key}=${path.join(dir, key)}`);
      }
      await must(k, args);
      log(`  created Secret ${w.name}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** Secrets the config names that someone else must create; throws naming the missing ones. */
export async function checkUserSecrets(k: Kubectl, c: DeployConfig): Promise<void> {
  const wanted = [...toolSecretsOf(c), ...(c.llm.secret ? [c.llm.secret] : []), ...('external' in c.redis ? [c.redis.external.passwordSecret.name] : [])].sort();
  if (!wanted.length) return;
  const r = await k(['-n', c.namespace, 'get', 'secret', ...wanted, '--ignore-not-found', '-o', 'name']);
  if (r.code !== 0) throw new Error(`kubectl get secret failed:\n${r.stderr.trim()}`);
  const present = new Set(r.stdout.split('\n').map((l) => l.trim().replace(/^secret\//, '')));
  const missing = wanted.filter((s) => !present.has(s));
  if (missing.length) {
    throw new Error(`baton.config.ts names Secrets that do not exist in namespace ${c.namespace}: ${missing.join(', ')}\n(create them first, e.g. kubectl -n ${c.namespace} create secret generic NAME --from-file=KEY=FILE)`);
  }
}

/** Revisions of each Knative Service that are still routed (tagged): kept until retired. */
export async function routedRevisions(k: Kubectl, c: DeployConfig, functions: readonly string[], retire: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  if (c.mode !== 'knative') return out;
  for (const fn of functions) {
    const json = await must(k, ['-n', c.namespace, 'get', 'services.serving.knative.dev', names(c).knativeService(fn), '--ignore-not-found', '-o', 'json']);
    if (!json.trim()) continue;
    const traffic = ((JSON.parse(json) as { spec?: { traffic?: Array<{ revisionName?: string; tag?: string }> } }).spec?.traffic ?? []);
    out[fn] = traffic.filter((t) => t.revisionName && t.tag && !retire.includes(t.revisionName)).map((t) => t.revisionName as string);
  }
  return out;
}

function waitsFor(c: DeployConfig, o: Manifest, scaled: Set<string>): string[][] {
  const ns = ['-n', c.namespace];
  const name = o.metadata.name;
  switch (`${o.apiVersion}/${o.kind}`) {
    case 'postgresql.cnpg.io/v1/Cluster':
      return [[...ns, 'wait', '--for=condition=Ready', `clusters.postgresql.cnpg.io/${name}`, '--timeout=20m']];
    case 'postgresql.cnpg.io/v1/Pooler':
      // CNPG runs the pooler as a Deployment named after the Pooler.
      return [[...ns, 'rollout', 'status', `deployment/${name}`, '--timeout=10m']];
    case 'batch/v1/Job':
      return [[...ns, 'wait', '--for=condition=complete', `job/${name}`, '--timeout=15m']];
    case 'apps/v1/Deployment':
      return scaled.has(name) ? [] : [[...ns, 'rollout', 'status', `deployment/${name}`, '--timeout=10m']];
    case 'serving.knative.dev/v1/Service':
      return [[...ns, 'wait', '--for=condition=Ready', `services.serving.knative.dev/${name}`, '--timeout=10m']];
    case 'keda.sh/v1alpha1/ScaledObject':
      return [[...ns, 'wait', '--for=condition=Ready', `scaledobjects.keda.sh/${name}`, '--timeout=5m']];
    default:
      return [];
  }
}

export async function applyPhases(k: Kubectl, c: DeployConfig, rendered: Rendered, log: (line: string) => void): Promise<void> {
  const scaled = new Set(
    rendered.phases.flatMap((p) => p.objects.filter((o) => o.kind === 'ScaledObject').map((o) => (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name)),
  );
  await checkUserSecrets(k, c);
  for (const { phase, objects } of rendered.phases) {
    if (!objects.length) continue;
    const started = performance.now();
    log(`${phase}: applying ${objects.length} object(s)`);
    const out = await must(k, ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', '-'], formatManifests(objects, 'yaml'));
    for (const line of out.trim().split('\n').filter(Boolean)) log(`  ${line}`);
    if (phase === 'namespace') await ensureSecrets(k, c, log);
    for (const o of objects) {
      for (const args of waitsFor(c, o, scaled)) {
        log(`  waiting for ${o.kind}/${o.metadata.name}…`);
        const r = await k(args);
        if (r.code !== 0) {
          const hint = o.kind === 'Job' ? `\n  logs: kubectl -n ${c.namespace} logs job/${o.metadata.name}` : '';
          throw new Error(`${o.kind}/${o.metadata.name} did not become ready:\n${(r.stderr || r.stdout).trim()}${hint}`);
        }
      }
    }
    log(`${phase}: ready (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}

/** `kubectl diff`: exit 0 → no change, 1 → changes (printed), anything else → an error. */
export async function diff(k: Kubectl, objects: readonly Manifest[]): Promise<{ changed: boolean; output: string }> {
  const r = await k(['diff', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', '-'], formatManifests(objects, 'yaml'));
  if (r.code > 1) throw new Error(`kubectl diff failed:\n${r.stderr.trim()}`);
  return { changed: r.code === 1, output: r.stdout };
}
