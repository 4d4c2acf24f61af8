# Baton: one image for every role (api, worker, dispatcher, function, housekeeper,
# migrate, tool servers); `baton deploy` picks the role with the container's args.
#
# "Compiled JS" here means type-stripped TypeScript, done by Node itself: the code is
# erasable TypeScript only (no enums, namespaces or parameter properties; eslint
# enforces it), so Node 22.18+ runs the .ts files by removing the type annotations at
# load time, which is exactly what `tsc` would emit for this code, line for line (stack
# traces keep their line numbers). A separate emit step would add a dist/ tree to keep
# in sync and would break the `functions/<name>/index.ts` convention the runtime loads.
# The build stage still type-checks, so an image never ships code that does not check.

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
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

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
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "scripts/baton.ts"]
CMD ["api"]
