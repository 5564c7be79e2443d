{{- define "webhook-exec.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webhook-exec.fullname" -}}
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

{{- define "webhook-exec.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webhook-exec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "webhook-exec.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "webhook-exec.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "webhook-exec.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webhook-exec.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "webhook-exec.groupName" -}}
{{- required "groupName is required: set it to the API group Issuers will use as webhook.groupName, e.g. --set groupName=acme.example.com" .Values.groupName }}
{{- end }}

{{- define "webhook-exec.configMapName" -}}
{{- default (printf "%s-config" (include "webhook-exec.fullname" .)) .Values.config.existingConfigMap }}
{{- end }}

{{- /* "true" when a RAW program is configured: RAW mode needs extra reads. */ -}}
{{- define "webhook-exec.rawMode" -}}
{{- $raw := .Values.config.rawMode }}
{{- range .Values.config.programs }}
{{- if eq (default "default" .mode) "RAW" }}{{ $raw = true }}{{ end }}
{{- end }}
{{- if $raw }}true{{ end }}
{{- end }}

{{- /* "true" when runs are serialised per zone across replicas with Leases. */ -}}
{{- define "webhook-exec.zoneLeases" -}}
{{- if eq (toString .Values.zoneLeases) "auto" }}{{ if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- else if .Values.zoneLeases }}true{{ end }}
{{- end }}

{{- define "webhook-exec.servingSecret" -}}
{{ include "webhook-exec.fullname" . }}-tls
{{- end }}

{{- /* cert-manager's cluster resource namespace: ClusterIssuers' Secrets and the namespace their requests carry. */ -}}
{{- define "webhook-exec.clusterResourceNamespace" -}}
{{- default .Values.certManager.namespace .Values.certManager.clusterResourceNamespace }}
{{- end }}

{{- /* "true" when the admission policy is rendered: asked for, and the cluster serves
ValidatingAdmissionPolicy v1 (Kubernetes 1.30+, unless an admin turned it off). Helm learns
that from the cluster's discovery; `helm template` knows no cluster, so it renders the policy
only with `--api-versions admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy`. */ -}}
{{- define "webhook-exec.admissionPolicy" -}}
{{- if and .Values.admissionPolicy.enabled (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy") }}true{{ end }}
{{- end }}

{{- define "webhook-exec.policyParamsName" -}}
{{- default (printf "%s-policy" .Values.config.existingConfigMap) .Values.admissionPolicy.paramsConfigMap }}
{{- end }}

{{- /* The programs as the admission policy sees them, from config.programs: the
flattened format a params ConfigMap holds with config.existingConfigMap, as JSON. */ -}}
{{- define "webhook-exec.programView" -}}
{{- $names := list }}
{{- $view := dict }}
{{- range .Values.config.programs }}
{{- $name := .name }}
{{- $names = append $names $name }}
{{- with .secretEnv }}{{ $_ := set $view (printf "%s.secretEnv" $name) (join "," .) }}{{ end }}
{{- with .allowedNamespaces }}{{ $_ := set $view (printf "%s.allowedNamespaces" $name) (join "," .) }}{{ end }}
{{- end }}
{{- $_ := set $view "programs" (join "," (sortAlpha $names)) }}
{{- with .Values.config.defaultProgram }}{{ $_ := set $view "defaultProgram" . }}{{ end }}
{{- toJson $view }}
{{- end }}

{{- /* A CEL expression naming the JSON kind of the value of CEL expression ., as the webhook's refusals do. */ -}}
{{- define "webhook-exec.celKind" -}}
(type({{ . }}) == string ? 'a string' : type({{ . }}) == list ? 'an array' : type({{ . }}) == map ? 'an object' : type({{ . }}) == bool ? 'a bool' : type({{ . }}) == null_type ? 'null' : 'a number')
{{- end }}

{{- /* The webhook's refusals of the entries of env map (CEL expression .) of
one kind, as a CEL list of strings: "keys" (a key other than secretKeyRef, name
and key), "types" (a value of the wrong JSON kind) and "refs" (secretKeyRef,
name or key missing or empty), the order in which the webhook reports them. */ -}}
{{- define "webhook-exec.celEnvRefusals" -}}
{{- $env := index . 0 }}{{ $e := printf "%s[n]" $env }}{{ $ref := printf "%s[n].secretKeyRef" $env }}
{{- if eq (index . 1) "keys" -}}
{{ $env }}.filter(n, type({{ $e }}) == map).map(n,
  {{ $e }}.exists(k, k != 'secretKeyRef') ?
    'issuer config: env ' + n + ': unknown key "' + {{ $e }}.filter(k, k != 'secretKeyRef')[0] + '"; a variable is set only by secretKeyRef with name and key' :
  has({{ $e }}.secretKeyRef) && type({{ $ref }}) == map && {{ $ref }}.exists(k, k != 'name' && k != 'key') ?
    'issuer config: env ' + n + ': secretKeyRef: unknown key "' + {{ $ref }}.filter(k, k != 'name' && k != 'key')[0] + '"; secretKeyRef has only "name" and "key"' :
  '').filter(m, m != '')
{{- else if eq (index . 1) "types" -}}
{{ $env }}.map(n,
  type({{ $e }}) != map && type({{ $e }}) != null_type ?
    'issuer config: env ' + n + ': expected secretKeyRef with name and key, got ' + {{ include "webhook-exec.celKind" $e }} +
      "; an Issuer takes values only from Secrets, literal values belong in the solver config (the program's env)" :
  type({{ $e }}) == null_type || !has({{ $e }}.secretKeyRef) || type({{ $ref }}) == null_type ?
    '' :
  type({{ $ref }}) != map ?
    'issuer config: env ' + n + ': secretKeyRef: expected a mapping, got ' + {{ include "webhook-exec.celKind" $ref }} :
  has({{ $ref }}.name) && type({{ $ref }}.name) != string && type({{ $ref }}.name) != null_type ?
    'issuer config: env ' + n + ': secretKeyRef: name: expected a string, got ' + {{ include "webhook-exec.celKind" (printf "%s.name" $ref) }} :
  has({{ $ref }}.key) && type({{ $ref }}.key) != string && type({{ $ref }}.key) != null_type ?
    'issuer config: env ' + n + ': secretKeyRef: key: expected a string, got ' + {{ include "webhook-exec.celKind" (printf "%s.key" $ref) }} :
  '').filter(m, m != '')
{{- else -}}
{{ $env }}.map(n,
  type({{ $e }}) != map && type({{ $e }}) != null_type ?
    '' :
  type({{ $e }}) == null_type || !has({{ $e }}.secretKeyRef) || type({{ $ref }}) == null_type ?
    'issuer config: env ' + n + ': needs secretKeyRef with name and key' :
  type({{ $ref }}) != map ?
    '' :
  !has({{ $ref }}.name) || !has({{ $ref }}.key) || {{ $ref }}.name == null || {{ $ref }}.key == null || {{ $ref }}.name == '' || {{ $ref }}.key == '' ?
    'issuer config: env ' + n + ': secretKeyRef needs both name and key' :
  '').filter(m, m != '')
{{- end }}
{{- end }}

{{/* The Pod's dnsPolicy: the value given, else ClusterFirstWithHostNet with
hostNetwork (so that programs still resolve cluster names); empty otherwise
(Kubernetes's ClusterFirst). */}}
{{- define "webhook-exec.dnsPolicy" -}}
{{- if .Values.dnsPolicy }}
{{- .Values.dnsPolicy }}
{{- else if .Values.hostNetwork }}
{{- "ClusterFirstWithHostNet" }}
{{- end }}
{{- end }}

{{- /* Fails on a securePort that a node's own services listen on, with
hostNetwork: the Kubernetes components' defaults (kubernetes.io "Ports and
Protocols", and the kubelet's and kube-proxy's local ports, which a wildcard
bind collides with too) and two agents commonly on the host network. */ -}}
{{- define "webhook-exec.checkHostPort" -}}
{{- if .Values.hostNetwork }}
{{- $nodePorts := dict
  "2379" "etcd's client port on control-plane nodes"
  "2380" "etcd's peer port on control-plane nodes"
  "6443" "the API server's port on control-plane nodes"
  "9099" "Calico's health port on nodes running it"
  "9100" "Prometheus node-exporter's port on nodes running it"
  "10248" "the kubelet's health port on every node"
  "10249" "kube-proxy's metrics port on nodes running it"
  "10250" "the kubelet's API port on every node"
  "10255" "the kubelet's read-only port on nodes enabling it"
  "10256" "kube-proxy's health port on nodes running it"
  "10257" "kube-controller-manager's port on control-plane nodes"
  "10259" "kube-scheduler's port on control-plane nodes" }}
{{- $port := toString .Values.securePort }}
{{- with get $nodePorts $port }}
{{- fail (printf "securePort %s is %s; with hostNetwork the webhook listens on its node's own addresses, where it would fail to bind, or, started first, keep that service from binding. Pick a port no node service uses, e.g. 10260 (the chart README's Networking section lists the ports refused)" $port .) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Fails on a program whose path is in the scripts directory but names no
key of scripts, nor a file an extraVolumeMount puts there: the runner would
find no program at start, and the Pod would crash-loop. */ -}}
{{- define "webhook-exec.checkScripts" -}}
{{- $dir := "/etc/cert-manager-webhook-exec/scripts/" }}
{{- $keys := keys (.Values.scripts | default dict) | sortAlpha }}
{{- range $i, $p := .Values.config.programs }}
{{- $path := toString $p.path }}
{{- if hasPrefix $dir $path }}
{{- $key := trimPrefix $dir $path }}
{{- $mounted := has $key $keys }}
{{- range $.Values.extraVolumeMounts }}
{{- if or (eq .mountPath $path) (hasPrefix (printf "%s/" (trimSuffix "/" .mountPath)) $path) }}{{ $mounted = true }}{{ end }}
{{- end }}
{{- if not $mounted }}
{{- $has := ternary "scripts is empty" (printf "scripts has: %s" (join ", " $keys)) (empty $keys) }}
{{- fail (printf "config.programs[%d] (%q): path %s is scripts.%s, which is not set (%s); scripts.<key> is mounted at %s<key>, so the two must match" $i (toString $p.name) $path $key $has $dir) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /* The image both containers run: pinned by digest when image.digest is set (as a release's
chart is), else by tag (default the chart's appVersion). */ -}}
{{- define "webhook-exec.image" -}}
{{- if .Values.image.digest }}{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else }}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}
