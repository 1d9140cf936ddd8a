// The usage texts of the commands that read the cluster, apart from their code: the audit
// command prints them without loading the Kubernetes client those commands need.

export const PLAN_USAGE = `Usage: kubectl-placement plan -f POLICY.yaml [-f ...] [--cluster-state FILE]
       [--kubeconfig FILE] [--context NAME] [-o table|json]

Prints what applying the policies of POLICY.yaml (PlacementPolicies and
ClusterPlacementPolicies, one or more documents; -f again for more files; - for
standard input) would do, with the policies already in the cluster: the workloads
the operator would rewrite and their terms, the rollouts it would start and those
it would hold back (and why), the policies that would be Unsatisfiable, and the
running pods that would break the new rules. Writes nothing.

The cluster is read through the kubeconfig (--kubeconfig, else $KUBECONFIG, else
~/.kube/config), or from --cluster-state FILE: a Kubernetes List as \`audit\` reads.

Exit status: 0 nothing held back or unsatisfiable, 1 something would be held back or
unsatisfiable, 2 input that could not be read.
`;

export const WHY_USAGE = `Usage: kubectl-placement why POD [-n NAMESPACE] [-f SNAPSHOT]
       [--kubeconfig FILE] [--context NAME] [-o table|json]

Explains one pod (POD or NAMESPACE/POD; the namespace defaults to "default"):
- not bound to a node: which nodes each placement rule rules out (node affinity and
  nodeSelector, taints and cordons, topology spread, pod affinity, pod anti-affinity
  and other pods' anti-affinity), the conflicting pods by name and domain, and the
  smallest changes that would let it schedule;
- bound and breaking a rule: the rule, the domain and the other pods involved;
- otherwise: the rules it is under and who put them there (its owner or a policy).

The cluster is read through the kubeconfig (--kubeconfig, else $KUBECONFIG, else
~/.kube/config), GET requests only, or from -f SNAPSHOT: a Kubernetes List as \`audit\`
reads (- for standard input).

Exit status: 0 the pod meets its rules (or they admit a node), 1 it breaks a rule or no
node passes its rules, 2 input that could not be read or a pod that is not there.
`;
