// Command descheduler-peer runs the descheduler's RemovePodsViolatingInterPodAntiAffinity
// plugin on a Kubernetes List (the JSON that `kubectl get nodes,pods,namespaces -A -o json`
// prints) and prints, as one JSON object, the pods it would evict and how long it took.
//
// The plugin runs as its own unit tests run it: a fake clientset holding the List's
// objects, the framework handle of sigs.k8s.io/descheduler/pkg/framework/testing, the
// default evictor, a dry-run pod evictor and no eviction limits.
//
//	descheduler-peer FILE.json|FILE.yaml
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	"sigs.k8s.io/descheduler/pkg/descheduler/evictions"
	frameworkfake "sigs.k8s.io/descheduler/pkg/framework/fake"
	"sigs.k8s.io/descheduler/pkg/framework/plugins/defaultevictor"
	antiaffinity "sigs.k8s.io/descheduler/pkg/framework/plugins/removepodsviolatinginterpodantiaffinity"
	frameworktesting "sigs.k8s.io/descheduler/pkg/framework/testing"
	frameworktypes "sigs.k8s.io/descheduler/pkg/framework/types"
	"sigs.k8s.io/yaml"
)

// result is what the bench reads: the evicted pods as NAMESPACE/NAME, sorted.
type result struct {
	Nodes             int      `json:"nodes"`
	Pods              int      `json:"pods"`
	ReadSeconds       float64  `json:"readSeconds"`
	SetupSeconds      float64  `json:"setupSeconds"`
	DescheduleSeconds float64  `json:"descheduleSeconds"`
	Evicted           []string `json:"evicted"`
}

// recordingHandle is the test handle with an evictor that remembers whom it evicted.
type recordingHandle struct {
	*frameworkfake.HandleImpl
	evicted []string
}

func (h *recordingHandle) Evictor() frameworktypes.Evictor { return h }

func (h *recordingHandle) Evict(ctx context.Context, pod *v1.Pod, opts evictions.EvictOptions) error {
	err := h.HandleImpl.Evict(ctx, pod, opts)
	if err == nil {
		h.evicted = append(h.evicted, pod.Namespace+"/"+pod.Name)
	}
	return err
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: descheduler-peer FILE")
		os.Exit(2)
	}
	// The plugin logs each verdict; the bench wants the answer, not the log.
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	if err := run(flag.Arg(0)); err != nil {
		fmt.Fprintf(os.Stderr, "descheduler-peer: %v\n", err)
		os.Exit(2)
	}
}

func run(file string) error {
	start := time.Now()
	nodes, pods, err := readList(file)
	if err != nil {
		return err
	}
	read := time.Since(start)

	start = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	objs := make([]runtime.Object, 0, len(nodes)+len(pods))
	for _, n := range nodes {
		objs = append(objs, n)
	}
	for _, p := range pods {
		objs = append(objs, p)
	}
	client := fake.NewSimpleClientset(objs...)
	handle, _, err := frameworktesting.InitFrameworkHandle(
		ctx,
		client,
		evictions.NewOptions().WithDryRun(true),
		defaultevictor.DefaultEvictorArgs{},
		nil,
	)
	if err != nil {
		return fmt.Errorf("framework handle: %w", err)
	}
	recorder := &recordingHandle{HandleImpl: handle}
	plugin, err := antiaffinity.New(ctx, &antiaffinity.RemovePodsViolatingInterPodAntiAffinityArgs{}, recorder)
	if err != nil {
		return fmt.Errorf("plugin: %w", err)
	}
	setup := time.Since(start)

	start = time.Now()
	if status := plugin.(frameworktypes.DeschedulePlugin).Deschedule(ctx, nodes); status != nil && status.Err != nil {
		return fmt.Errorf("deschedule: %w", status.Err)
	}
	deschedule := time.Since(start)

	sort.Strings(recorder.evicted)
	out := result{
		Nodes:             len(nodes),
		Pods:              len(pods),
		ReadSeconds:       read.Seconds(),
		SetupSeconds:      setup.Seconds(),
		DescheduleSeconds: deschedule.Seconds(),
		Evicted:           recorder.evicted,
	}
	if out.Evicted == nil {
		out.Evicted = []string{}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// readList decodes the Nodes and Pods of a List (JSON, or YAML for a .yaml file); other
// kinds are skipped.
func readList(file string) ([]*v1.Node, []*v1.Pod, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasSuffix(file, ".yaml") {
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	var nodes []*v1.Node
	var pods []*v1.Pod
	for i, raw := range list.Items {
		var head struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, nil, fmt.Errorf("%s: items[%d]: %w", file, i, err)
		}
		switch head.Kind {
		case "Node":
			n := &v1.Node{}
			if err := json.Unmarshal(raw, n); err != nil {
				return nil, nil, fmt.Errorf("%s: items[%d]: %w", file, i, err)
			}
			nodes = append(nodes, n)
		case "Pod":
			p := &v1.Pod{}
			if err := json.Unmarshal(raw, p); err != nil {
				return nil, nil, fmt.Errorf("%s: items[%d]: %w", file, i, err)
			}
			if p.Namespace == "" {
				p.Namespace = "default"
			}
			// The pod evictor refuses pods without a UID; the API server always sets one.
			if p.UID == "" {
				p.UID = types.UID(p.Namespace + "/" + p.Name)
			}
			pods = append(pods, p)
		}
	}
	return nodes, pods, nil
}
