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
