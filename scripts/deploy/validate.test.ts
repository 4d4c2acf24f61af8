/**
 * The validator must catch what a cluster would reject, or silently prune: each case
 * breaks one field of an object that validates, and must name that field.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { renderValidated } from '../commands/deploy.ts';
import { loadDeployConfig } from './config.ts';
import type { Manifest } from './manifest.ts';
import { allObjects } from './render.ts';
import { SCHEMA_DIR, createValidator, strictSchema } from './validate.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SHARED_CRDS = path.resolve(ROOT, '../shared/k8s-crds');

let objects: Manifest[] = [];
const validator = createValidator();

before(async () => {
  const knative = allObjects(await renderValidated(await loadDeployConfig(ROOT, { mode: 'knative' }), []));
  const worker = allObjects(await renderValidated(await loadDeployConfig(ROOT, { mode: 'worker' }), []));
  objects = [...knative, ...worker.filter((o) => o.metadata.name.endsWith('-worker'))];
});

const pick = (kind: string, apiVersion?: string): Manifest => {
  const o = objects.find((x) => x.kind === kind && (!apiVersion || x.apiVersion === apiVersion));
  assert.ok(o, `a ${kind} is rendered`);
  return structuredClone(o);
};

type Json = { [key: string]: Json } | Json[] | string | number | boolean | null;

/** Sets (or, with `undefined`, deletes) the field at a dotted path such as `spec.triggers.0.type`. */
function set(o: unknown, dotted: string, value: Json | undefined): void {
  const keys = dotted.split('.');
  let cur = o as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  if (value === undefined) delete cur[keys.at(-1)!];
  else cur[keys.at(-1)!] = value;
}

/** Applies `breakIt` to a copy of a valid object and returns the problems found. */
async function broken(kind: string, breakIt: (o: unknown) => void, apiVersion?: string) {
  const o = pick(kind, apiVersion);
  assert.deepEqual(await validator.validate([o]), [], `the unbroken ${kind} is valid`);
  breakIt(o);
  return validator.validate([o]);
}

describe('CRD objects', () => {
  test('an unknown field anywhere is an error (objects are closed)', async () => {
    const p = await broken('ScaledObject', (o) => {
      set(o, 'spec.minReplicaCout', 0);
    });
    assert.deepEqual(p.map((x) => [x.path, x.message]), [['/spec', 'unknown field "minReplicaCout"']]);
    const deep = await broken('Pooler', (o) => {
      set(o, 'spec.pgbouncer.poolmode', 'transaction');
    });
    assert.ok(deep.some((x) => x.path === '/spec/pgbouncer' && x.message.includes('poolmode')));
  });

  test('CNPG enums: poolMode statement and an unknown pooler type are rejected', async () => {
    const p = await broken('Pooler', (o) => {
      set(o, 'spec.pgbouncer.poolMode', 'statement');
      set(o, 'spec.type', 'primary');
    });
    assert.ok(p.some((x) => x.path === '/spec/pgbouncer/poolMode' && x.message.startsWith('must be one of')));
    assert.ok(p.some((x) => x.path === '/spec/type'));
  });

  test('KEDA trigger metadata values must be strings, and a trigger needs a type', async () => {
    const p = await broken('ScaledObject', (o) => {
      set(o, 'spec.triggers.0.metadata.lagCount', 5);
      set(o, 'spec.triggers.1.type', undefined);
    });
    assert.ok(p.some((x) => x.path === '/spec/triggers/0/metadata/lagCount' && x.message === 'must be string'));
    assert.ok(p.some((x) => x.path === '/spec/triggers/1' && x.message.includes('"type"')));
  });

  test('Knative: containerConcurrency "ten" is not an integer; probe ports are int-or-string', async () => {
    const p = await broken(
      'Service',
      (o) => {
        set(o, 'spec.template.spec.containerConcurrency', 'ten');
      },
      'serving.knative.dev/v1',
    );
    assert.ok(p.some((x) => x.path === '/spec/template/spec/containerConcurrency' && x.message === 'must be integer'));
    for (const port of [8080, 'http']) {
      const ok = await broken(
        'Service',
        (o) => {
          set(o, 'spec.template.spec.containers.0.readinessProbe.httpGet.port', port);
        },
        'serving.knative.dev/v1',
      );
      assert.deepEqual(ok, []);
    }
    const bad = await broken(
      'Service',
      (o) => {
        set(o, 'spec.template.spec.containers.0.readinessProbe.httpGet.port', true);
      },
      'serving.knative.dev/v1',
    );
    assert.ok(bad.length > 0);
  });

  test('metadata of custom objects: name format and string label values', async () => {
    const p = await broken('Cluster', (o) => {
      set(o, 'metadata.name', 'Baton_DB');
      set(o, 'metadata.labels.replicas', 3);
      set(o, 'metadata.generateName', 'x');
    });
    assert.deepEqual(p.map((x) => x.path).sort(), ['/metadata', '/metadata/labels/replicas', '/metadata/name']);
  });

  test('a TriggerAuthentication secret reference needs its parameter', async () => {
    const p = await broken('TriggerAuthentication', (o) => {
      set(o, 'spec.secretTargetRef.0.parameter', undefined);
    });
    assert.ok(p.some((x) => x.message.includes('"parameter"')));
  });
});

describe('core objects (Kubernetes v1.36 OpenAPI)', () => {
  test('wrong types, missing required fields and bad enums are errors', async () => {
    const d = await broken('Deployment', (o) => {
      set(o, 'spec.template.spec.containers.0.ports', [{ containerPort: '8080' }]);
      set(o, 'spec.selector', undefined);
    });
    assert.ok(d.some((x) => x.path === '/spec/template/spec/containers/0/ports/0/containerPort' && x.message === 'must be integer'));
    assert.ok(d.some((x) => x.path === '/spec' && x.message.includes('"selector"')));
    const np = await broken('NetworkPolicy', (o) => {
      set(o, 'spec.policyTypes', ['Inbound']);
    });
    assert.ok(np.some((x) => x.path === '/spec/policyTypes/0'));
    const job = await broken('Job', (o) => {
      set(o, 'spec.template.spec.restartPolicy', 'Sometimes');
    });
    assert.ok(job.some((x) => x.path === '/spec/template/spec/restartPolicy'));
    const sa = await broken('ServiceAccount', (o) => {
      set(o, 'automountServiceAccountToken', 'no');
    });
    assert.ok(sa.some((x) => x.path === '/automountServiceAccountToken'));
  });

  test('a kind with no schema is refused', async () => {
    const p = await validator.validate([{ apiVersion: 'example.org/v1', kind: 'Widget', metadata: { name: 'w' } }]);
    assert.match(p[0].message, /no schema for example.org\/v1\/Widget/);
  });
});

describe('schemas', () => {
  test('strictSchema closes typed objects but leaves preserve-unknown-fields and free maps open', () => {
    const s = strictSchema({
      type: 'object',
      properties: {
        a: { type: 'object', properties: { b: { type: 'string' } } },
        open: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { c: { type: 'string' } } },
        map: { type: 'object', additionalProperties: { type: 'string' } },
        port: { 'x-kubernetes-int-or-string': true },
      },
    }) as { additionalProperties?: unknown; properties: Record<string, { additionalProperties?: unknown; anyOf?: unknown }> };
    assert.equal(s.additionalProperties, false);
    assert.equal(s.properties.a.additionalProperties, false);
    assert.equal(s.properties.open.additionalProperties, undefined);
    assert.deepEqual(s.properties.map.additionalProperties, { type: 'string' });
    assert.deepEqual(s.properties.port.anyOf, [{ type: 'integer' }, { type: 'string' }]);
  });

  test('the copies in scripts/deploy/schemas are byte-for-byte upstream (git blob ids in their README)', () => {
    const readme = fs.readFileSync(path.join(SCHEMA_DIR, 'README.md'), 'utf8');
    const files = fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.yaml'));
    assert.equal(files.length, 5);
    for (const file of files) {
      const blob = execFileSync('git', ['hash-object', path.join(SCHEMA_DIR, file)], { encoding: 'utf8' }).trim();
      assert.match(readme, new RegExp(`\`${file.replaceAll('.', '\\.')}\`.*${blob}`), `${file} matches its README row`);
    }
  });

  test('the copies equal the shared upstream set, when it is present', (t) => {
    if (!fs.existsSync(SHARED_CRDS)) return t.skip(`${SHARED_CRDS} is not present on this machine`);
    for (const file of fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.yaml'))) {
      assert.ok(fs.readFileSync(path.join(SHARED_CRDS, file)).equals(fs.readFileSync(path.join(SCHEMA_DIR, file))), file);
    }
  });
});
