# Baton: one image for every role (api, worker, dispatcher, function, housekeeper,
# migrate, tool servers); `baton deploy` picks the role with the container's args.
#
# The image runs the TypeScript sources, type-stripped by Node itself: the code is
# erasable TypeScript only (no enums, namespaces or parameter properties; eslint
# enforces it), so Node 22.18+ runs the .ts files by removing the type annotations at
# load time, which is exactly what `tsc` would emit for this code, line for line (stack
# traces keep their line numbers), and the `functions/<name>/index.ts` convention holds.
# (The npm package is different: Node strips no types under node_modules, so `npm pack`
# builds dist/ JavaScript for it.) The build stage type-checks, so an image never ships
# code that does not check.
#
# Only what runs: production dependencies without the optional ones (the embedded
# database, deploy's YAML and schema validation, pretty logs for terminals), which the
# api, worker, dispatcher, function and migrate roles never load.

# --- build: all dependencies, type-check -------------------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN node_modules/.bin/tsc --noEmit -p .

# --- deps: production dependencies only ---------------------------------------------
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime --------------------------------------------------------------------------
FROM node:22-bookworm-slim
# git: the demo's git tool server reads diffs with it. tini: signals reach node (drain on SIGTERM).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    BATON_DATA_DIR=/tmp/baton
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/runtime ./runtime
COPY --from=build --chown=root:root /app/schema ./schema
COPY --from=build --chown=root:root /app/functions ./functions
COPY --from=build --chown=root:root /app/tools ./tools
COPY --from=build --chown=root:root /app/scripts ./scripts
# Files owned by root, process runs as `node` (uid 1000): the code cannot be modified at
# run time, and the pods also mount the root filesystem read-only.
USER 1000:1000
# 8080: the API (or a function's /invoke); 9464: Prometheus /metrics (BATON_METRICS_PORT).
EXPOSE 8080 9464
ENTRYPOINT ["/usr/bin/tini", "--", "node", "scripts/baton.ts"]
CMD ["api"]
