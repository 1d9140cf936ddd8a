#!/usr/bin/env bash
# Shared by the hack/tools/build-*.sh scripts: builds pinned Go commands into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/<name>-<version>/
# with a stamp of what they were built from, one build at a time per cache, never leaving a
# half-written binary. Sourced, not run.
#
#   go_tool_build <name> <version> <stamp> <command...>
# The stamp says what the build is made from (a change rebuilds it); go_version gives the
# Go part of it. The command installs the binaries into "$GOBIN" (a scratch directory it is given); the
# directory is printed on stdout when it is current, whether cached or just built.

go_tool_cache="${PLACEMENT_CACHE:-$HOME/.cache/placement-operator}"

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi

go_version() { go env GOVERSION 2>/dev/null || echo no-go; }

go_tool_build() {
  local name="$1" version="$2" stamp="$3"
  shift 3
  local dir="$go_tool_cache/tools/$name-$version"
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
    echo "$dir"
    return 0
  fi
  if [[ -f "$dir/.stamp" ]] && ! command -v go >/dev/null; then
    echo "$name: no Go to check $dir against its stamp; using it as it is" >&2
    echo "$dir"
    return 0
  fi
  command -v go >/dev/null || { echo "$name: needs Go to build $name $version" >&2; return 1; }
  # One build at a time per cache (see hack/control-plane/build.sh); a build that
  # finished while this one waited is taken as it is.
  mkdir -p "$go_tool_cache"
  exec 9>"$go_tool_cache/.build.lock"
  flock 9
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
    echo "$dir"
    return 0
  fi
  local start=$SECONDS partial="$dir/.partial"
  echo ">> building $name $version into $dir (first run only; minutes)" >&2
  rm -rf "$partial" "$dir/.stamp"
  mkdir -p "$partial"
  # Static, reproducible, with the installed toolchain only; 2 cores shared.
  GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS='' GOBIN="$partial" "$@" >&2
  local built
  for built in "$partial"/*; do mv -f "$built" "$dir/"; done
  rmdir "$partial"
  echo "$stamp" > "$dir/.stamp"
  echo ">> built $name $version in $((SECONDS - start))s" >&2
  echo "$dir"
}
