{{/* Chart name, overridable. */}}
{{- define "placement-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of every object the release owns. */}}
{{- define "placement-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "placement-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "placement-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "placement-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "placement-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: placement-operator
{{- end }}

{{- define "placement-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "placement-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "placement-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Rules the JSON schema cannot state with a helpful message: they span several values.
Included once, from the Deployment.
*/}}
{{- define "placement-operator.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicas) 1) }}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: more than one active replica would fight over the same workloads. Set leaderElection.enabled: true or replicas: 1." (int .Values.replicas)) }}
{{- end }}
{{- end }}

{{/*
The rules of one role, rendered from files/permissions.yaml (the one table of the operator's
permissions): the grants of `scope` whose `when` is one of `whens`. Called as
(list . "cluster" (list "always")). A grant whose scope and when no template renders, or
that limits a grant other than a leader-election one to the Lease, fails the render.
*/}}
{{- define "placement-operator.rules" -}}
{{- $root := index . 0 }}
{{- $scope := index . 1 }}
{{- $whens := index . 2 }}
{{- $rendered := list "cluster/always" "cluster/remediation" "cluster/reports" "cluster/policyReports" "release/leaderElection" }}
{{- range $i, $g := $root.Files.Get "files/permissions.yaml" | fromYamlArray }}
{{- $where := printf "files/permissions.yaml, grant %d (%s %s)" (add1 $i) (default "core" $g.group) $g.resource }}
{{- if not (has (printf "%s/%s" $g.scope $g.when) $rendered) }}
{{- fail (printf "%s: scope %q with when %q is rendered by no template (one of %s)" $where (toString $g.scope) (toString $g.when) (join ", " $rendered)) }}
{{- end }}
{{- if and $g.lease (ne $g.when "leaderElection") }}
{{- fail (printf "%s: lease: true needs when: leaderElection" $where) }}
{{- end }}
{{- if and (eq $g.scope $scope) (has $g.when $whens) }}
- apiGroups: [{{ $g.group | quote }}]
  resources: [{{ $g.resource }}]
  {{- if $g.lease }}
  resourceNames: [{{ $root.Values.leaderElection.leaseName | quote }}]
  {{- else if $g.names }}
  resourceNames: [{{ range $j, $n := $g.names }}{{ if $j }}, {{ end }}{{ $n | quote }}{{ end }}]
  {{- end }}
  verbs: [{{ join ", " $g.verbs }}]
{{- end }}
{{- end }}
{{- end }}
