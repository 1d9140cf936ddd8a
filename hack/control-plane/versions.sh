# shellcheck shell=bash disable=SC2034 # sourced; the variables are used by the sourcing script
# Pinned versions of the local test control plane. Sourced by build.sh and
# update-modules.sh, and read by test/cluster/paths.ts; bump here, then run
# update-modules.sh and build.sh.
# Kubernetes stays on 1.36.x: 1.37's apiserver refuses a loopback
# --advertise-address unless the endpoint reconciler is disabled.
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16 # Debian's etcd 3.4.23 breaks apiserver watches (< 3.4.31)
KWOK_VERSION=v0.8.0
