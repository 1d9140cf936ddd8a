//go:build tools

// Package tools pins the Kubernetes commands that build.sh compiles, so that
// `go mod tidy` keeps every module they need in go.mod and go.sum. The build
// tag keeps this file out of any real build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
