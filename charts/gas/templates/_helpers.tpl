{{/*
Names and labels. Every object carries app.kubernetes.io/* labels; selectors use only the
stable subset (name, instance, component): never the chart version, which changes on every
upgrade while a Deployment's selector is immutable.
*/}}

{{- define "gas.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gas.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gas.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of objects that belong to the release as a whole. */}}
{{- define "gas.commonLabels" -}}
helm.sh/chart: {{ include "gas.chart" . }}
app.kubernetes.io/name: {{ include "gas.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gas
{{- end -}}

{{/* Selector of the whole release (ServiceMonitor, NetworkPolicy peers). */}}
{{- define "gas.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "gas.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Context of one service: dict root, name, svc (values merged over defaults). */}}
{{- define "gas.serviceName" -}}
{{- printf "%s-%s" (include "gas.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gas.labels" -}}
{{ include "gas.commonLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "gas.selectorLabels" -}}
{{ include "gas.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "gas.image" -}}
{{- $image := .root.Values.image -}}
{{- $repository := printf "%s%s" $image.repositoryPrefix .name -}}
{{- if $image.registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $repository -}}
{{- end -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* The service's queue name in AWS, and what KEDA's queueURL gets (URL or unambiguous name). */}}
{{- define "gas.queueName" -}}
{{- printf "%s-%s" .root.Values.config.namePrefix .svc.queue -}}
{{- end -}}

{{- define "gas.queueURL" -}}
{{- $aws := .root.Values.aws -}}
{{- if $aws.accountId -}}
{{- printf "https://sqs.%s.amazonaws.com/%s/%s" $aws.region $aws.accountId (include "gas.queueName" .) -}}
{{- else -}}
{{- include "gas.queueName" . -}}
{{- end -}}
{{- end -}}

{{- define "gas.isWorker" -}}
{{- if eq .svc.kind "worker" }}true{{ end -}}
{{- end -}}

{{/* The annotator in job mode runs as a KEDA ScaledJob instead of a Deployment. */}}
{{- define "gas.isJob" -}}
{{- if and (eq .svc.kind "worker") (eq (default "deployment" .svc.mode) "job") }}true{{ end -}}
{{- end -}}

{{- define "gas.usesKeda" -}}
{{- if and (include "gas.isWorker" .) .root.Values.keda.enabled .svc.autoscaling.enabled }}true{{ end -}}
{{- end -}}

{{/* Pods mark themselves busy only where scale-in can hit them: Deployments. */}}
{{- define "gas.marksPods" -}}
{{- if and (include "gas.isWorker" .) .svc.podDeletionCost (not (include "gas.isJob" .)) }}true{{ end -}}
{{- end -}}

{{- define "gas.referenceURI" -}}
{{- $ref := .svc.reference -}}
{{- if $ref.uri -}}
{{- $ref.uri -}}
{{- else -}}
{{- printf "s3://%s-results/references/%s/%s/" .root.Values.config.namePrefix $ref.assembly $ref.version -}}
{{- end -}}
{{- end -}}

{{/* The annotator is the only service with a reference bundle. */}}
{{- define "gas.hasReference" -}}
{{- if and (include "gas.isWorker" .) .svc.reference }}true{{ end -}}
{{- end -}}

{{- define "gas.runbook" -}}
{{- printf "%s#%s" .root.Values.monitoring.prometheusRule.runbookUrl .anchor -}}
{{- end -}}
