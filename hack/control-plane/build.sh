#!/usr/bin/env bash
# Builds the local test control plane (see /DESIGN.md, "Test environment: a
# real control plane") into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/k8s-<version>/bin/
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and
# kwok, from the pins in versions.sh and the wrapper modules k8s/ and etcd/.
# (test/cluster/local-cluster.ts starts the processes itself: kwokctl is not
# needed.) Needs only Go and the Go module proxy; never downloads release
# binaries.
#
# Idempotent: each binary has a stamp recording what it was built from (tool
# version and the wrapper module's go.mod/go.sum hash); a binary whose stamp
# matches is skipped, so a warm run takes well under a second. The Go version
# is recorded too but is not part of the match: a Go upgrade alone does not
# trigger a 15-minute rebuild (delete the cache directory to force one).
#
# Usage: hack/control-plane/build.sh [--print-bin-dir]
#   --print-bin-dir  print only the bin directory (after building) on stdout
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"

cache="${PLACEMENT_CACHE:-$HOME/.cache/placement-operator}"
bin_dir="$cache/k8s-$K8S_VERSION/bin"
stamp_dir="$bin_dir/.stamps"

# One build at a time per cache: test runs started side by side wait for each other's
# build instead of building the same binaries twice into the same files.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

print_bin_dir=false
if [[ "${1:-}" == "--print-bin-dir" ]]; then print_bin_dir=true; fi

# Progress goes to stderr so that --print-bin-dir leaves stdout clean.
say() { echo ">> $*" >&2; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { echo "build.sh: needs Go (see hack/control-plane/k8s/go.mod for the version)" >&2; exit 1; }

# Pinned, reproducible, static builds with the installed toolchain only: 2
# cores, so one package graph at a time with -p 2. GOWORK=off: a go.work
# elsewhere must not change what the wrapper modules resolve to.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
go_build_flags=(-trimpath -p 2)
go_version="$(go env GOVERSION)"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}" # v1.36.3 -> 36
# A fixed build date keeps the stamp (and /version output) stable.
build_date="1970-01-01T00:00:00Z"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1"
  k8s_ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  k8s_ldflags+=" -X $pkg.buildDate=$build_date"
done
k8s_ldflags="-s -w$k8s_ldflags"

# What a binary was built from; a change to any part forces a rebuild.
stamp_of() { # <name> <tool version> [module dir]
  local sum="-"
  if [[ -n "${3:-}" ]]; then sum="$(cat "$3/go.mod" "$3/go.sum" | sha256sum | cut -c1-16)"; fi
  echo "$1 $2 mod:$sum"
}

# Only the stamp's first line is compared; the second is for people.
is_current() { # <name> <stamp>
  [[ -x "$bin_dir/$1" && -f "$stamp_dir/$1" && "$(head -n1 "$stamp_dir/$1")" == "$2" ]]
}

# Builds into a temp file and renames, so an interrupted build never leaves a
# half-written binary that a later run would trust.
finish() { # <name> <built file> <stamp>
  mv -f "$2" "$bin_dir/$1"
  printf '%s\nbuilt with %s at %s\n' "$3" "$go_version" "$(date -u +%FT%TZ)" > "$stamp_dir/$1"
}

timed() { # <name> <command...>
  local name="$1" start=$SECONDS; shift
  say "building $name"
  "$@" >&2
  say "built $name in $((SECONDS - start))s"
}

build_k8s() { # <name>
  local name="$1" stamp
  stamp="$(stamp_of "$name" "$K8S_VERSION" "$here/k8s")"
  if is_current "$name" "$stamp"; then say "$name $K8S_VERSION: cached"; return; fi
  (cd "$here/k8s" && GOFLAGS=-mod=readonly timed "$name" \
    go build "${go_build_flags[@]}" -ldflags "$k8s_ldflags" -o "$bin_dir/.$name.tmp" "k8s.io/kubernetes/cmd/$name")
  finish "$name" "$bin_dir/.$name.tmp" "$stamp"
}

build_etcd() {
  local stamp
  stamp="$(stamp_of etcd "$ETCD_VERSION" "$here/etcd")"
  if is_current etcd "$stamp"; then say "etcd $ETCD_VERSION: cached"; return; fi
  # The etcd main package is the root of go.etcd.io/etcd/server/v3.
  (cd "$here/etcd" && GOFLAGS=-mod=readonly timed etcd \
    go build "${go_build_flags[@]}" -ldflags "-s -w" -o "$bin_dir/.etcd.tmp" go.etcd.io/etcd/server/v3)
  finish etcd "$bin_dir/.etcd.tmp" "$stamp"
}

build_kwok() { # <name>
  local name="$1" stamp tmp
  stamp="$(stamp_of "$name" "$KWOK_VERSION")"
  if is_current "$name" "$stamp"; then say "$name $KWOK_VERSION: cached"; return; fi
  tmp="$bin_dir/.gobin-$name"
  mkdir -p "$tmp"
  # kwok is a normal module, so `go install @version` works (and ignores any
  # local go.mod). GOFLAGS is cleared because -mod is not allowed there.
  GOFLAGS='' GOBIN="$tmp" timed "$name" go install "${go_build_flags[@]}" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION"
  finish "$name" "$tmp/$name" "$stamp"
  rmdir "$tmp"
}

main() {
  local start=$SECONDS
  mkdir -p "$bin_dir" "$stamp_dir"
  # Two test runs may call this at once; the second waits, then finds all cached.
  if command -v flock >/dev/null; then
    exec 9>"$bin_dir/.lock"
    flock 9
  fi
  say "control plane binaries -> $bin_dir ($go_version)"
  build_etcd
  build_kwok kwok
  for name in kubectl kube-scheduler kube-controller-manager kube-apiserver; do
    build_k8s "$name"
  done
  say "all binaries ready in $((SECONDS - start))s"
  if $print_bin_dir; then echo "$bin_dir"; fi
}

main
