/**
 * What gets deployed: the validated config plus, for each function, what the
 * renderers need to know from its `defineAgent` (the tool servers it declares and
 * its longest step timeout). Cross-checks the two: a function that declares a tool
 * server the config does not define is an error here, not a 503 in the cluster.
 */
import { loadConfig } from '../../runtime/config.ts';
import type { FunctionRegistry } from '../../runtime/functions.ts';
import { STEP_MARGIN_S, stepBudget } from '../lib/step-budget.ts';
import type { DeployConfig, ResourcesConfig } from './config.ts';

export interface FunctionPlan {
  name: string;
  /** Tool servers the function declared (`tools: { git: [...] }`), sorted. */
  tools: string[];
  longestStepMs: number;
  concurrency: number;
  lagCount: number;
  pendingEntriesCount: number;
  minReplicas: number;
  maxReplicas: number;
  resources?: ResourcesConfig | undefined;
  env?: Record<string, string> | undefined;
}

export interface DeployPlan {
  config: DeployConfig;
  functions: FunctionPlan[];
  /** Tool server → the functions that may reach it. */
  toolUsers: Record<string, string[]>;
}

/** Knative caps a request at 600 s (max-revision-timeout-seconds); keep room for claim and commit. */
export const KNATIVE_MAX_TIMEOUT_S = 600;

const DEFAULTS = { concurrency: 32, lagCount: 5, pendingEntriesCount: 16, minReplicas: 0, maxReplicas: 20 };

export function planDeploy(config: DeployConfig, registry: FunctionRegistry, only?: readonly string[]): DeployPlan {
  const defaultTimeoutMs = loadConfig({}).stepTimeoutMs; // pods do not set BATON_STEP_TIMEOUT_MS
  for (const name of Object.keys(config.functions)) {
    if (!registry.has(name)) throw new Error(`baton.config.ts configures function "${name}", which functions/ does not define`);
  }
  const functions: FunctionPlan[] = [];
  for (const agent of [...registry.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const o = { ...DEFAULTS, ...config.defaults, ...config.functions[agent.name] };
    if (o.maxReplicas < Math.max(1, o.minReplicas)) throw new Error(`function "${agent.name}": maxReplicas must be at least max(1, minReplicas)`);
    const longestStepMs = Math.max(...[...agent.steps.values()].map((s) => s.timeoutMs ?? agent.timeoutMs ?? defaultTimeoutMs));
    if (config.mode === 'knative' && stepBudget(longestStepMs).knativeTimeoutS > KNATIVE_MAX_TIMEOUT_S) {
      throw new Error(
        `function "${agent.name}" has a step timeout of ${longestStepMs} ms; Knative serves at most ${KNATIVE_MAX_TIMEOUT_S} s per request ` +
          `(with ${STEP_MARGIN_S} s for claim and commit). Shorten the step or deploy with --mode worker.`,
      );
    }
    const tools = Object.keys(agent.tools).sort();
    for (const server of tools) {
      if (!config.tools[server]) {
        throw new Error(`function "${agent.name}" declares tool server "${server}", which baton.config.ts (tools) does not define`);
      }
    }
    functions.push({ name: agent.name, tools, longestStepMs, ...o });
  }
  if (only) for (const name of only) if (!registry.has(name)) throw new Error(`no function "${name}" in functions/`);
  // Tool access is decided by every function, so deploying one function leaves the others' access intact.
  const toolUsers: Record<string, string[]> = {};
  for (const server of Object.keys(config.tools).sort()) toolUsers[server] = functions.filter((f) => f.tools.includes(server)).map((f) => f.name);
  return { config, functions: only?.length ? functions.filter((f) => only.includes(f.name)) : functions, toolUsers };
}
