/**
 * Tool names as the model sees them. Model APIs allow `[a-zA-Z0-9_-]` in a function
 * name, not the dot of `server.tool`, so the model sees `<server>_<tool>` (for example
 * `git_get_diff`). Server names are `[a-z0-9-]+` (no underscore), so the first `_`
 * always splits a model-visible name back into its server and tool.
 */
export const SERVER_NAME = /^[a-z0-9-]+$/;

/** `git.get_diff` → `git_get_diff` */
export function modelToolName(server: string, tool: string): string {
  return `${server}_${tool}`;
}

/**
 * `git_get_diff` → `git.get_diff`. A name that does not split (no `_`, or an empty side)
 * comes back as it is: the gateway then refuses it, audited like any undeclared tool.
 */
export function gatewayToolName(modelName: string): string {
  const cut = modelName.indexOf('_');
  if (cut <= 0 || cut === modelName.length - 1) return modelName;
  return `${modelName.slice(0, cut)}.${modelName.slice(cut + 1)}`;
}
