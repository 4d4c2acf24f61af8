/**
 * Knative revision pinning, shared by `baton deploy` (which renders the routes) and
 * the dispatcher (which follows them). Revisions are named `<function>-<hash>`; each
 * one that runs may still need is routed under the tag `r-<hash>`, which Knative
 * serves at `r-<hash>-<function>.<namespace>.svc.<domain>`. Short tags keep that
 * host within the 63-character DNS label limit for any function name.
 */

/** The route tag of a revision named `<function>-<hash>`. */
export function revisionTag(revision: string): string {
  return `r-${revision.slice(revision.lastIndexOf('-') + 1)}`;
}

/** Fills `{tag}` (and `{revision}`) in a pinned-URL template. */
export function pinnedUrl(template: string, revision: string): string {
  return template.replaceAll('{tag}', revisionTag(revision)).replaceAll('{revision}', revision);
}
