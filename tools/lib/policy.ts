/**
 * Tenant policy (BATON_TOOL_POLICY): what each tenant's runs may touch at a tool
 * server, enforced by the server itself, whatever the function declared and whatever
 * the model was talked into. The value is inline JSON or the path of a JSON file:
 *
 *   {"tenants": {"acme": {"repos": ["acme/*", "shared/docs"]}}}
 *
 * A repository pattern is `owner/name` where `*` stands for any run of characters but
 * `/` (so `acme/*` is every repository of acme, `*\/*` every repository); names compare
 * case-insensitively, as GitHub's do. A tenant missing from the policy may touch
 * nothing. A call that names no repository (listing every comment) is "all
 * repositories" and needs `*\/*`. No policy at all allows everything, and the server
 * says so loudly at start: that is for local development only (`baton deploy` always
 * renders one).
 */
import fs from 'node:fs';

export interface TenantRules {
  repos?: string[];
}

export interface ToolPolicy {
  tenants: Record<string, TenantRules>;
}

/** The repositories a call touches: a list, or `all` (a call that names none). */
export type Touches = { repos: string[] } | { repos: 'all' };

function parse(text: string, where: string): ToolPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`BATON_TOOL_POLICY (${where}) is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const p = json as { tenants?: unknown } | null;
  if (!p || typeof p !== 'object' || Array.isArray(p) || !p.tenants || typeof p.tenants !== 'object' || Array.isArray(p.tenants)) {
    throw new Error(`BATON_TOOL_POLICY (${where}) must look like {"tenants":{"<tenant>":{"repos":["owner/*"]}}}`);
  }
  const tenants: Record<string, TenantRules> = Object.create(null);
  for (const [tenant, rules] of Object.entries(p.tenants as Record<string, unknown>)) {
    const r = rules as { repos?: unknown } | null;
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error(`BATON_TOOL_POLICY (${where}): tenants.${tenant} must be an object`);
    if (r.repos !== undefined && !(Array.isArray(r.repos) && r.repos.every((x) => typeof x === 'string' && /^[^/\s]+\/[^/\s]+$/.test(x)))) {
      throw new Error(`BATON_TOOL_POLICY (${where}): tenants.${tenant}.repos must be a list of "owner/name" patterns`);
    }
    tenants[tenant] = { ...(r.repos ? { repos: [...(r.repos as string[])] } : {}) };
  }
  return { tenants };
}

/** BATON_TOOL_POLICY: inline JSON (starts with `{`) or a file path; null when unset. */
export function loadPolicy(value: string | undefined): ToolPolicy | null {
  const text = value?.trim();
  if (!text) return null;
  if (text.startsWith('{')) return parse(text, 'inline');
  let content: string;
  try {
    content = fs.readFileSync(text, 'utf8');
  } catch (err) {
    throw new Error(`BATON_TOOL_POLICY: cannot read ${text}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parse(content, text);
}

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
const matcher = (pattern: string) => new RegExp(`^${pattern.split('*').map(escape).join('[^/]*')}$`, 'i');

/** null when the tenant may touch everything the call touches; otherwise the reason, naming the rule. */
export function policyProblem(policy: ToolPolicy, tenant: string, touches: Touches): string | null {
  const rules = Object.hasOwn(policy.tenants, tenant) ? policy.tenants[tenant] : undefined;
  if (!rules) return `policy_denied: tenant "${tenant}" has no entry in BATON_TOOL_POLICY (tenants.${tenant}), so it may touch nothing here`;
  const patterns = rules.repos ?? [];
  const rule = `BATON_TOOL_POLICY tenants.${tenant}.repos is ${JSON.stringify(patterns)}`;
  if (touches.repos === 'all') {
    return patterns.includes('*/*') ? null : `policy_denied: tenant "${tenant}" may not touch every repository (name one; ${rule})`;
  }
  for (const repo of touches.repos) {
    if (!patterns.some((p) => matcher(p).test(repo))) return `policy_denied: tenant "${tenant}" may not touch repository "${repo}" (${rule})`;
  }
  return null;
}

/** The loud start-up line of a server that enforces no policy. */
export function noPolicyWarning(server: string): string {
  return (
    `\n${server}: WARNING: no BATON_TOOL_POLICY is set: every tenant's runs may touch ANY repository through this server. ` +
    'That is for local development only; set BATON_TOOL_POLICY (inline JSON or a file) to confine tenants.\n\n'
  );
}
