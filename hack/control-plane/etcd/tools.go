//go:build tools

// Package tools pins the etcd server main package (the root of
// go.etcd.io/etcd/server/v3) so that `go mod tidy` records its dependencies.
package tools

import _ "go.etcd.io/etcd/server/v3"
