/**
 * Prints manifests: YAML documents separated by `---`, or one JSON `List`. Keys are already sorted.
 *
 * The YAML is written for YAML 1.1 readers, because kubectl is one (sigs.k8s.io/yaml):
 * a plain `on`, `no`, `y`, `0777` or `1_000` is a boolean or a number to it, and the
 * API server then refuses it where a string belongs. Stringifying with the 1.1 schema
 * quotes every such string; YAML 1.2 readers read the same values.
 */
import YAML from 'yaml';
import type { Manifest } from './manifest.ts';

export type Format = 'yaml' | 'json';

export function formatManifests(objects: readonly Manifest[], format: Format): string {
  if (format === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  return objects.map((o) => YAML.stringify(o, { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' })).join('---\n');
}

/** The documents as a YAML 1.1 reader (kubectl) decodes them. */
export function decodeManifests(yaml: string): Manifest[] {
  return YAML.parseAllDocuments(yaml, { version: '1.1' }).map((d) => d.toJS() as Manifest);
}
