/**
 * Offline validation of every rendered object, before anything is applied.
 *
 * KEDA, Knative and CNPG objects: the upstream CRD schemas in ./schemas/, checked with
 * draft-04 semantics (ajv-draft-04) plus what Kubernetes adds: objects that list
 * `properties` and do not preserve unknown fields are closed (an unknown field is an
 * error, as `kubectl apply --validate=strict` would say), and
 * `x-kubernetes-int-or-string` is "integer or string". Their `metadata` is checked
 * here too, since the CRD schemas leave it open.
 *
 * Core objects: the Kubernetes v1.36 OpenAPI schemas compiled into `kubernetes-models`.
 * Those leave objects open, so unknown core fields are caught earlier, by the type
 * checker: the renderers build core objects as kubernetes-models' interfaces.
 */
import fs from 'node:fs';
import path from 'node:path';
import AjvDraft04 from 'ajv-draft-04';
import type { ValidateFunction } from 'ajv';
import YAML from 'yaml';
import type { Manifest } from './manifest.ts';

export const SCHEMA_DIR = path.join(import.meta.dirname, 'schemas');

export interface Problem {
  object: string;
  path: string;
  message: string;
}

type Check = (data: unknown) => boolean;
interface CompiledError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Core kinds Baton renders → the kubernetes-models validator of that kind. */
const CORE: Record<string, () => Promise<{ validate: Check }>> = {
  'v1/Namespace': () => import('kubernetes-models/_schemas/IoK8sApiCoreV1Namespace'),
  'v1/ServiceAccount': () => import('kubernetes-models/_schemas/IoK8sApiCoreV1ServiceAccount'),
  'v1/Service': () => import('kubernetes-models/_schemas/IoK8sApiCoreV1Service'),
  'v1/Secret': () => import('kubernetes-models/_schemas/IoK8sApiCoreV1Secret'),
  'apps/v1/Deployment': () => import('kubernetes-models/_schemas/IoK8sApiAppsV1Deployment'),
  'batch/v1/Job': () => import('kubernetes-models/_schemas/IoK8sApiBatchV1Job'),
  'networking.k8s.io/v1/NetworkPolicy': () => import('kubernetes-models/_schemas/IoK8sApiNetworkingV1NetworkPolicy'),
};

type Schema = Record<string, unknown>;

/** Closes objects with properties and rewrites int-or-string, recursively (a copy). */
export function strictSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictSchema);
  if (!schema || typeof schema !== 'object') return schema;
  const s: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    s[key] = key === 'enum' || key === 'default' || key === 'example' ? value : strictSchema(value);
  }
  if (s['x-kubernetes-int-or-string'] === true) {
    delete s.type;
    s.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (s.properties && s['x-kubernetes-preserve-unknown-fields'] !== true && s.additionalProperties === undefined) {
    s.additionalProperties = false;
  }
  return s;
}

interface CrdVersion {
  name: string;
  schema?: { openAPIV3Schema?: unknown };
}
interface Crd {
  spec: { group: string; names: { kind: string }; versions: CrdVersion[] };
}

/** `apiVersion/kind` → schema, from every CRD file in `dir`. */
export function loadCrdSchemas(dir = SCHEMA_DIR): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const crd = YAML.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Crd;
    for (const version of crd.spec.versions) {
      if (version.schema?.openAPIV3Schema) out.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, version.schema.openAPIV3Schema);
    }
  }
  return out;
}

function describe(e: CompiledError): string {
  const p = e.params;
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown field "${String(p.additionalProperty)}"`;
    case 'required':
      return `missing required field "${String(p.missingProperty)}"`;
    case 'type':
      return `must be ${String(p.type)}`;
    case 'enum':
      return `must be one of ${JSON.stringify(p.allowedValues)}`;
    default:
      return e.message ?? `fails "${e.keyword}" ${JSON.stringify(p)}`;
  }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const METADATA_FIELDS = new Set(['name', 'namespace', 'labels', 'annotations']);

function checkMetadata(o: Manifest, add: (path: string, message: string) => void) {
  const m = o.metadata as Record<string, unknown> | undefined;
  if (!m || typeof m !== 'object') return add('/metadata', 'missing required field "metadata"');
  for (const key of Object.keys(m)) if (!METADATA_FIELDS.has(key)) add('/metadata', `unknown field "${key}"`);
  if (typeof m.name !== 'string' || m.name.length > 253 || !DNS_SUBDOMAIN.test(m.name)) add('/metadata/name', 'must be a DNS subdomain name');
  for (const field of ['labels', 'annotations']) {
    const map = m[field];
    if (map === undefined) continue;
    if (!map || typeof map !== 'object') add(`/metadata/${field}`, 'must be object');
    else for (const [k, v] of Object.entries(map)) if (typeof v !== 'string') add(`/metadata/${field}/${k}`, 'must be string');
  }
}

export interface Validator {
  validate(objects: readonly Manifest[]): Promise<Problem[]>;
}

export function createValidator(schemaDir = SCHEMA_DIR): Validator {
  const crds = loadCrdSchemas(schemaDir);
  // A CommonJS module: its class is the `default` of the default import under nodenext.
  const Ajv = (AjvDraft04 as unknown as { default: typeof AjvDraft04.default }).default;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const compiled = new Map<string, ValidateFunction>();
  return {
    async validate(objects) {
      const problems: Problem[] = [];
      for (const o of objects) {
        const id = `${o?.kind ?? '?'}/${o?.metadata?.name ?? '?'}`;
        const add = (p: string, message: string) => problems.push({ object: id, path: p || '/', message });
        if (!o || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') {
          add('/', 'apiVersion and kind are required');
          continue;
        }
        const key = `${o.apiVersion}/${o.kind}`;
        const crd = crds.get(key);
        let check: Check & { errors?: unknown };
        if (crd) {
          const fn = compiled.get(key) ?? ajv.compile(strictSchema(crd) as object);
          compiled.set(key, fn);
          check = fn;
          checkMetadata(o, add);
        } else if (CORE[key]) {
          check = (await CORE[key]()).validate;
        } else {
          add('/', `no schema for ${key}: baton deploy renders no such object`);
          continue;
        }
        if (!check(o)) for (const e of (check.errors ?? []) as CompiledError[]) add(e.instancePath, describe(e));
      }
      return problems;
    },
  };
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `  ${p.object} ${p.path}: ${p.message}`).join('\n');
}
