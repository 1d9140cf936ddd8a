# syntax=docker/dockerfile:1
# placement-operator image: Node 24 LTS, compiled dist/ only, production dependencies
# only, distroless runtime (no shell, no package manager), non-root 65532.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg SOURCE_URL=https://... -t placement-operator .
#
# hack/image/build.sh builds this file with podman from locally made base images;
# test/integration/image/ checks the runtime image's files and runs it as the chart does.
# Pin the base images by digest in release builds (--build-arg NODE_IMAGE=...@sha256:...).

ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# --- build: full dependency tree, compile src/ to dist/ ---
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY hack/node hack/node
COPY src/ src/
RUN npm run build

# --- deps: production dependencies only, from a clean install ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime: node is the entrypoint; nothing else runs in here ---
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG SOURCE_URL=https://git.example/platform/placement-operator
LABEL org.opencontainers.image.title="placement-operator" \
      org.opencontainers.image.description="Kubernetes operator that turns placement intent into affinity rules and audits running pods for affinity drift" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
WORKDIR /app
ENV NODE_ENV=production
# The old generation may grow to 75 % of the memory the container may use (its cgroup limit;
# 768 MiB under the chart's 1 GiB), not to V8's own default: the audit's passes leave
# hundreds of MiB of garbage at 150,000 pods, which V8 collects late while the heap may grow
# (2.5 GiB peak uncapped, 1.2 GiB under a 1 GiB old space, CPU within 15 %; the first pass
# needs about 490 MiB live: docs/benchmarks.md, "Where the operator's heap goes"). Under the
# limit, the collector runs before the kernel's OOM killer would.
# The young generation is capped at 8 MiB semi-spaces: V8 sizes them from the old
# generation's limit (far larger here), and at 150,000 pods the larger young generation
# kept about 120 MiB more resident after the audit's first pass, for no CPU saved
# (docs/benchmarks.md, "The operator's RSS: what V8 keeps beyond the live heap").
ENV NODE_OPTIONS="--max-old-space-size-percentage=75 --max-semi-space-size=8"
# Owned by root and not writable by the runtime user (the chart also mounts / read-only).
COPY package.json ./
COPY --from=deps /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY crds/ crds/
USER 65532:65532
EXPOSE 8080
CMD ["dist/main.js"]
