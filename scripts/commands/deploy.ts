/**
 * `baton deploy [FUNCTION...] --namespace NS --image IMAGE [--dry-run] [-o yaml|json] [--mode knative|worker]`
 * `baton deploy diff [FUNCTION...] ...`
 *
 * Renders every object the platform needs from functions/ and baton.config.ts (flags
 * override it), validates all of them (CRD and Kubernetes schemas, cross-references,
 * the platform rules of scripts/deploy/rules.ts),
 * then applies them phase by phase and waits for each (README "Run on Kubernetes").
 * --dry-run prints the manifests instead; `diff` shows what would change.
 * --retire REVISION stops routing a Knative revision no live run needs any more.
 */
import { loadConfig } from '../../runtime/config.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { checkReferences } from '../deploy/check-references.ts';
import { type DeployConfig, loadDeployConfig } from '../deploy/config.ts';
import { planDeploy } from '../deploy/plan.ts';
import { type Rendered, allObjects, render } from '../deploy/render.ts';
import type { Problem } from '../deploy/validate.ts';
import { parseCommand, usageError } from '../lib/cli.ts';

export const usage =
  'usage: baton deploy [diff] [FUNCTION...] [--namespace NS] [--image IMAGE] [--mode knative|worker] [--config FILE] [--dry-run] [-o yaml|json] [--retire REVISION]... [--context CTX]';

export const help = `${usage}

Renders every Kubernetes object Baton needs from functions/ and baton.config.ts in the
current directory (flags override it), validates all of them (CRD and Kubernetes
schemas, cross-references), then applies them phase by phase, waiting for each
(README "Run on Kubernetes"). With FUNCTION names, only those functions (and the
shared objects).

  diff                  show what would change (kubectl diff); nothing is applied
  --dry-run [-o yaml|json]  print the manifests; nothing is applied
  --namespace NS, -n    --image IMAGE, --mode knative|worker: override the config
  --config FILE         another config file than baton.config.ts
  --retire REVISION     stop routing a Knative revision no live run needs (repeatable)
  --context CTX         the kubectl context`;

/** Renders and validates; throws with every problem listed. Exported for tests. */
export async function renderValidated(config: DeployConfig, only: readonly string[], retain: Record<string, string[]> = {}): Promise<Rendered> {
  const registry = await loadFunctions(loadConfig({}).functionsDir);
  const rendered = render(planDeploy(config, registry, only), { retain });
  const objects = allObjects(rendered);
  // YAML and schema validation are optional dependencies that runtime images leave out:
  // loaded when used, so `baton deploy --help` works everywhere.
  const [{ createValidator, formatProblems }, { checkRules }] = await Promise.all([import('../deploy/validate.ts'), import('../deploy/rules.ts')]);
  const problems: Problem[] = [
    ...(await createValidator().validate(objects)),
    ...checkReferences(config, objects),
    ...checkRules(config, objects, registry),
  ];
  if (problems.length) throw new Error(`the rendered manifests are invalid (nothing was applied):\n${formatProblems(problems)}`);
  return rendered;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      namespace: { type: 'string', short: 'n' },
      image: { type: 'string' },
      mode: { type: 'string' },
      config: { type: 'string' },
      'dry-run': { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      retire: { type: 'string', multiple: true },
      context: { type: 'string' },
    },
    usage,
  );
  const isDiff = positionals[0] === 'diff';
  const only = isDiff ? positionals.slice(1) : positionals;
  const format = values.output ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') throw usageError('-o must be yaml or json', usage);
  if (values.output && !values['dry-run']) throw usageError('-o goes with --dry-run', usage);
  const config = await loadDeployConfig(process.cwd(), { namespace: values.namespace, image: values.image, mode: values.mode }, values.config);

  if (values['dry-run']) {
    const rendered = await renderValidated(config, only);
    const { formatManifests } = await import('../deploy/output.ts');
    process.stdout.write(formatManifests(allObjects(rendered), format));
    return 0;
  }
  const { applyPhases, checkPrerequisites, diff, kubectl, routedRevisions } = await import('../deploy/apply.ts');
  const k = kubectl(values.context ? ['--context', values.context] : []);
  await checkPrerequisites(k, config);
  const registry = await loadFunctions(loadConfig({}).functionsDir);
  const fnNames = planDeploy(config, registry, only).functions.map((f) => f.name);
  const retain = await routedRevisions(k, config, fnNames, values.retire ?? []);
  const rendered = await renderValidated(config, only, retain);
  if (isDiff) {
    const result = await diff(k, allObjects(rendered));
    process.stdout.write(result.output);
    console.error(result.changed ? 'baton deploy diff: changes above' : 'baton deploy diff: no changes');
    return 0;
  }
  const started = performance.now();
  await applyPhases(k, config, rendered, (line) => console.error(line));
  console.error(`deployed to namespace ${config.namespace} in ${((performance.now() - started) / 1000).toFixed(0)} s (mode ${config.mode})`);
  return 0;
}
