{{/* The chart name. */}}
{{- define "fleetmq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the operator's objects: <release>-operator, or <release>-fleetmq-operator
when the release name does not contain the chart name; `helm install fleetmq`
gives fleetmq-operator, the name config/ uses.
*/}}
{{- define "fleetmq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s-operator" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value. */}}
{{- define "fleetmq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "fleetmq.labels" -}}
helm.sh/chart: {{ include "fleetmq.chart" . }}
{{ include "fleetmq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: fleetmq
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels. */}}
{{- define "fleetmq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetmq.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "fleetmq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fleetmq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image. */}}
{{- define "fleetmq.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Checks of values that a schema cannot express. */}}
{{- define "fleetmq.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled: two operators without a leader would reconcile the same Brokers at once" }}
{{- end }}
{{- if and .Values.passwordHashIterations (lt (int .Values.passwordHashIterations) 1000) }}
{{- fail "passwordHashIterations must be at least 1000" }}
{{- end }}
{{- end }}
