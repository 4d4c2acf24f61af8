/**
 * The closed set of errors. Each code has one HTTP status and one retry rule;
 * the API's single error handler and the step engine both read this table.
 */
export const ERROR_CODES = {
  // Client mistakes (never 5xx).
  invalid_json: { status: 400, retryable: false },
  invalid_input: { status: 400, retryable: false },
  invalid_request: { status: 400, retryable: false },
  invalid_run_id: { status: 400, retryable: false },
  unauthorized: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  function_not_found: { status: 404, retryable: false },
  run_not_found: { status: 404, retryable: false },
  step_not_found: { status: 404, retryable: false },
  route_not_found: { status: 404, retryable: false },
  method_not_allowed: { status: 405, retryable: false },
  run_not_failed: { status: 409, retryable: false },
  run_finished: { status: 409, retryable: false },
  idempotency_key_conflict: { status: 409, retryable: false },
  payload_too_large: { status: 413, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  // Limits (README "Limits"): the client may retry after Retry-After.
  too_many_streams: { status: 429, retryable: true },
  quota_exceeded: { status: 429, retryable: true },
  too_many_auth_failures: { status: 429, retryable: true },
  // Dependencies down: the client may retry.
  database_unavailable: { status: 503, retryable: true },
  queue_unavailable: { status: 503, retryable: true },
  // Step failures (kept on steps.error / runs.error).
  step_error: { status: 500, retryable: true },
  step_timeout: { status: 504, retryable: true },
  llm_error: { status: 502, retryable: true },
  tool_error: { status: 502, retryable: true },
  tool_unavailable: { status: 503, retryable: true },
  tool_denied: { status: 403, retryable: false },
  /** A tool server saw the step's idempotency key with other arguments (or another tool). */
  idempotency_conflict: { status: 409, retryable: false },
  one_call_per_step: { status: 500, retryable: false },
  unknown_step: { status: 500, retryable: false },
  invalid_step_result: { status: 500, retryable: false },
  crash_loop: { status: 500, retryable: false },
  /** An agent loop hit one of its budgets (maxTurns, maxTokens, maxCostUsd); `details.budget` names it. */
  budget_exceeded: { status: 402, retryable: false },
  cancelled: { status: 409, retryable: false },
  lease_lost: { status: 409, retryable: true },
  internal: { status: 500, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The JSON shape stored in runs.error / steps.error and returned by the API. */
export interface ErrorJson {
  code: string;
  message: string;
  retryable?: boolean;
  details?: unknown;
}

export class BatonError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;
  /** When a retry should start at the earliest (a provider's Retry-After), instead of the jittered backoff. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; details?: unknown; cause?: unknown; retryAfterMs?: number | undefined } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'BatonError';
    this.code = code;
    this.retryable = opts.retryable ?? ERROR_CODES[code].retryable;
    this.details = opts.details;
    this.retryAfterMs = opts.retryAfterMs;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toJSON(): ErrorJson {
    const json: ErrorJson = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.details !== undefined) json.details = this.details;
    return json;
  }
}

/** Normalises anything thrown into a BatonError (graphile's coerceError). */
export function coerceError(err: unknown): BatonError {
  if (err instanceof BatonError) return err;
  if (err instanceof Error) {
    // AI SDK errors say whether a retry can help (e.g. 429 vs 400).
    const sdk = err as Error & { isRetryable?: boolean; statusCode?: number };
    if (err.name.startsWith('AI_')) {
      return new BatonError('llm_error', err.message, { retryable: sdk.isRetryable ?? true, cause: err });
    }
    return new BatonError('step_error', err.message || err.name, { cause: err });
  }
  return new BatonError('step_error', typeof err === 'string' ? err : JSON.stringify(err) ?? String(err));
}
