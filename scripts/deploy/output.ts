/** Prints manifests: YAML documents separated by `---`, or one JSON `List`. Keys are already sorted. */
import YAML from 'yaml';
import type { Manifest } from './manifest.ts';

export type Format = 'yaml' | 'json';

export function formatManifests(objects: readonly Manifest[], format: Format): string {
  if (format === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  return objects.map((o) => YAML.stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
