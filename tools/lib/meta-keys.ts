/**
 * The `_meta` keys of a tool call that the gateway sends and a tool server reads. In a
 * module of their own, so the gateway does not load the MCP server SDK to know them.
 */

/** The call's idempotency key: `runId:seq`, the same for every attempt of the step. */
export const IDEMPOTENCY_META_KEY = 'baton/idempotency-key';
/** The digest of the call's arguments, sent beside the idempotency key (a key reused with other arguments is a conflict). */
export const ARGS_DIGEST_META_KEY = 'baton/args-digest';
