/**
 * The authoring API: `defineAgent`, and the four ways a step ends — `next`, `done`, `wait`,
 * `parallel` (fan out to branches that a join step collects; README "Fan-out and join").
 * Functions import only this module (and `append`); they never see SQL, Redis or HTTP.
 *
 * @example
 * export default defineAgent({
 *   name: 'hello', input: v.object({ who: v.string() }), start: 'greet',
 *   steps: { greet: async (ctx) => done((await ctx.llm.generateText({ prompt: `Greet ${ctx.input.who}` })).text) },
 * });
 */
import type * as v from 'valibot';
import type { LlmClient } from './llm/client.ts';
import type { ToolDefinition } from './mcp/tool-list-cache.ts';
import { agentLoop, type LoopOptions, withBudgetInput } from './agent/loop.ts';
import { DEFAULT_MAX_TURNS } from './agent/budget.ts';
import type { Patch, State } from './state.ts';

export { append } from './state.ts';
export type { Patch, State } from './state.ts';
export type { ToolDefinition } from './mcp/tool-list-cache.ts';
export { agentLoop, type LoopOptions } from './agent/loop.ts';

export interface NextResult {
  type: 'next';
  step: string;
  patch: Patch;
}
export interface DoneResult {
  type: 'done';
  output: unknown;
  patch: Patch;
}
export interface WaitResult {
  type: 'wait';
  signal: string;
  /** Step that receives the signal (default: the waiting step runs again, with ctx.signal set). */
  step: string | undefined;
  timeoutMs: number | undefined;
  /** What the run waits for, shown by GET /v1/runs/:id while it waits (e.g. a tool call to approve). */
  request?: unknown;
  patch: Patch;
}
/** One branch of a fan-out: the step that runs it and what it gets as `ctx.branch.input`. */
export interface BranchSpec {
  step: string;
  input?: unknown;
}
export interface ParallelResult {
  type: 'parallel';
  branches: BranchSpec[];
  /** The step that runs once every branch has finished; it sees them in `ctx.branches`. */
  join: string;
  onBranchFailure: 'fail' | 'continue';
  patch: Patch;
}
export type StepResult = NextResult | DoneResult | WaitResult | ParallelResult;

/** Hand the baton to `step`, recording `patch` as this step's change to the run's state. */
export function next(step: string, patch: Patch = {}): NextResult {
  return { type: 'next', step, patch };
}

/** Finish the run with `output`. */
export function done(output: unknown = null, patch: Patch = {}): DoneResult {
  return { type: 'done', output, patch };
}

/** Park the run until `POST /v1/runs/:id/signals/:signal` (or the timeout); it holds no worker meanwhile. */
export function wait(signal: string, opts: { next?: string; timeoutMs?: number; patch?: Patch; request?: unknown } = {}): WaitResult {
  return {
    type: 'wait',
    signal,
    step: opts.next,
    timeoutMs: opts.timeoutMs,
    ...(opts.request !== undefined ? { request: opts.request } : {}),
    patch: opts.patch ?? {},
  };
}

/**
 * Fan out: run every branch as its own step (claimed, leased, retried and committed on its
 * own, by any worker, at the same time), then run `join` once, after all of them, with their
 * results in `ctx.branches`, in the order given here. A branch ends with `done(output, patch?)`;
 * its patch is applied to the run's state in branch order before the join (branches see the
 * state as of this step, not each other's changes). A branch that fails after its attempts
 * fails the run, or with `onBranchFailure: 'continue'` reaches the join as `{ ok: false, error }`.
 *
 * @example
 * return parallel([{ step: 'fetch', input: { file: 'a.ts' } }, { step: 'fetch', input: { file: 'b.ts' } }], { join: 'summarise' });
 */
export function parallel(
  branches: BranchSpec[],
  opts: { join: string; onBranchFailure?: 'fail' | 'continue'; patch?: Patch },
): ParallelResult {
  return { type: 'parallel', branches, join: opts.join, onBranchFailure: opts.onBranchFailure ?? 'fail', patch: opts.patch ?? {} };
}

/** What a branch step knows about its place in the fan-out. */
export interface BranchInfo {
  /** 1..of, in the order parallel() was given the branches. */
  index: number;
  of: number;
  /** The seq of the step that fanned out. */
  fanoutSeq: number;
  input: unknown;
}

/** What the join sees of one branch, in branch order. */
export interface BranchOutcome {
  index: number;
  step: string;
  seq: number;
  ok: boolean;
  /** The branch's done() output (when ok). */
  output: unknown;
  /** Why it failed after its attempts (`code`, `message`, …), when not ok (only with onBranchFailure: 'continue'). */
  error: { code: string; message: string; [key: string]: unknown } | null;
}

/** What a resumed step sees of the signal that woke it. */
export interface SignalDelivery {
  name: string;
  payload: unknown;
  timedOut: boolean;
}

export interface StepContext<I = unknown, S extends State = State> {
  readonly function: string;
  readonly runId: string;
  readonly seq: number;
  readonly step: string;
  readonly attempt: number;
  readonly input: I;
  /** The run's state as of the previous step (snapshot + patches). */
  readonly state: Readonly<S>;
  /** Set when the step runs because a signal arrived or its wait timed out. */
  readonly signal: SignalDelivery | undefined;
  /** Set when this step is a branch of a fan-out. */
  readonly branch: BranchInfo | undefined;
  /** Set when this step joins a fan-out: every branch's outcome, in branch order. */
  readonly branches: readonly BranchOutcome[] | undefined;
  /** Aborted on timeout, cancellation, lease loss or shutdown: pass it to anything slow. */
  readonly abortSignal: AbortSignal;
  /** `run_id:seq`, stable across retries: tools dedupe side effects on it. */
  readonly idempotencyKey: string;
  readonly llm: LlmClient;
  /** Calls `server.tool` through the MCP gateway; only tools the function declared are allowed. */
  tool<T = unknown>(name: string, args?: Record<string, unknown>): Promise<T>;
  /**
   * The definitions (description, JSON Schema of the arguments) of the tools this function
   * declared, from their servers' `tools/list` (cached per process). Not an external call
   * in the one-call sense: it has no side effect, and a step may list and then call.
   */
  listTools(): Promise<ToolDefinition[]>;
  log(message: string, fields?: Record<string, unknown>): void;
}

export type StepFn<I, S extends State> = (ctx: StepContext<I, S>) => StepResult | Promise<StepResult>;
export interface StepDefinition<I, S extends State> {
  run: StepFn<I, S>;
  timeoutMs?: number;
  maxAttempts?: number;
}

export interface AgentOptions<TSchema extends v.GenericSchema, S extends State> {
  /** DNS-label style: lower-case letters, digits and '-' (it names streams and Kubernetes objects). */
  name: string;
  description?: string;
  input: TSchema;
  /** Tool scopes: server name → the tools of that server this function may call. Nothing else is callable. */
  tools?: Record<string, readonly string[]>;
  start: string;
  /** Defaults for every step. */
  timeoutMs?: number;
  maxAttempts?: number;
  steps: Record<string, StepFn<v.InferOutput<TSchema>, S> | StepDefinition<v.InferOutput<TSchema>, S>>;
}

/**
 * An agent: the model chooses the tools. Instead of `start` and `steps`, `agent` says
 * how to talk to the model and what the run may spend; the engine runs the loop (README
 * "Agents"): every model turn and every tool call its own step.
 *
 * @example
 * export default defineAgent({
 *   name: 'pr-agent', input: v.object({ repo: v.string(), pr: v.number() }),
 *   tools: { git: ['list_changed_files', 'get_diff'], review: ['post_comment'] },
 *   agent: { instructions: 'You review code.', prompt: (i) => `Review ${i.repo}#${i.pr}.`, approve: ['review.post_comment'] },
 * });
 */
export interface LoopAgentOptions<TSchema extends v.GenericSchema> {
  name: string;
  description?: string;
  input: TSchema;
  tools: Record<string, readonly string[]>;
  agent: LoopOptions<v.InferOutput<TSchema>>;
  timeoutMs?: number;
  maxAttempts?: number;
}

export interface AgentLoopSettings {
  model: string | null;
  maxTurns: number;
  maxTokens: number | null;
  maxCostUsd: number | null;
  approve: readonly string[];
  approvalTimeoutMs: number | null;
}

export interface ResolvedStep {
  name: string;
  run: StepFn<unknown, State>;
  timeoutMs: number | undefined;
  maxAttempts: number | undefined;
}

export interface Agent {
  readonly kind: 'baton.agent';
  readonly name: string;
  readonly description: string | undefined;
  readonly input: v.GenericSchema;
  readonly tools: Readonly<Record<string, readonly string[]>>;
  readonly start: string;
  readonly timeoutMs: number | undefined;
  readonly maxAttempts: number | undefined;
  readonly steps: ReadonlyMap<string, ResolvedStep>;
  /** For an agent loop (`defineAgent({ agent })`): its model, budgets and approvals, as GET /v1/functions/:name shows them. */
  readonly loop?: AgentLoopSettings;
}

const FUNCTION_NAME = /^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/;
const STEP_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;

export function defineAgent<TSchema extends v.GenericSchema>(options: LoopAgentOptions<TSchema>): Agent;
export function defineAgent<TSchema extends v.GenericSchema, S extends State = State>(options: AgentOptions<TSchema, S>): Agent;
export function defineAgent<TSchema extends v.GenericSchema, S extends State = State>(
  given: AgentOptions<TSchema, S> | LoopAgentOptions<TSchema>,
): Agent {
  const options: AgentOptions<TSchema, S> =
    'agent' in given
      ? {
          ...given,
          input: withBudgetInput(given.input) as TSchema,
          ...(agentLoop(given.agent, given.tools, given.name) as unknown as Pick<AgentOptions<TSchema, S>, 'start' | 'steps'>),
        }
      : given;
  if (!FUNCTION_NAME.test(options.name)) {
    throw new Error(`defineAgent: name "${options.name}" must match ${FUNCTION_NAME} (it names streams and Kubernetes objects)`);
  }
  const steps = new Map<string, ResolvedStep>();
  for (const [name, def] of Object.entries(options.steps)) {
    if (!STEP_NAME.test(name)) throw new Error(`defineAgent(${options.name}): step name "${name}" must match ${STEP_NAME}`);
    const resolved = typeof def === 'function' ? { run: def } : def;
    steps.set(name, {
      name,
      run: resolved.run as StepFn<unknown, State>,
      timeoutMs: resolved.timeoutMs,
      maxAttempts: resolved.maxAttempts,
    });
  }
  if (!steps.has(options.start)) throw new Error(`defineAgent(${options.name}): start step "${options.start}" is not in steps`);
  return Object.freeze({
    kind: 'baton.agent' as const,
    name: options.name,
    description: options.description,
    input: options.input,
    tools: options.tools ?? {},
    start: options.start,
    timeoutMs: options.timeoutMs,
    maxAttempts: options.maxAttempts,
    steps,
    ...('agent' in given
      ? {
          loop: {
            model: given.agent.model ?? null,
            maxTurns: given.agent.maxTurns ?? DEFAULT_MAX_TURNS,
            maxTokens: given.agent.maxTokens ?? null,
            maxCostUsd: given.agent.maxCostUsd ?? null,
            approve: [...(given.agent.approve ?? [])],
            approvalTimeoutMs: given.agent.approvalTimeoutMs ?? null,
          },
        }
      : {}),
  });
}

export function isAgent(value: unknown): value is Agent {
  return typeof value === 'object' && value !== null && (value as Agent).kind === 'baton.agent';
}
