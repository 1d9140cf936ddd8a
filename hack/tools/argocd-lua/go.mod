module placement.dev/hack/tools/argocd-lua

// The versions Argo CD v3.6.2 pins in its go.mod.

go 1.26

require (
	github.com/yuin/gopher-lua v1.1.2
	layeh.com/gopher-json v0.0.0-20190114024228-97fed8db8427
)
